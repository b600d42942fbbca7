//! Return addresses to functions, files and lines, through the `map` lines
//! of the dump and the DWARF (or, without it, the symbol table) of each
//! mapped file.

use std::collections::HashMap;
use std::rc::Rc;

use object::{Object, ObjectSegment};

use crate::raw::Map;

/// One frame of a symbolized address; an address inside inlined code gives
/// several, innermost first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Frame {
    pub function: String,
    pub file: Option<String>,
    pub line: u32,
}

/// What one address became.
#[derive(Debug, Clone)]
pub struct Symbolized {
    /// Index into the maps, when the address falls in one.
    pub map: Option<usize>,
    pub frames: Vec<Frame>,
}

struct Object_ {
    loader: Option<addr2line::Loader>,
    /// (file offset, file size, virtual address) of each loadable segment.
    segments: Vec<(u64, u64, u64)>,
    pub build_id: Option<String>,
}

pub struct Symbolizer {
    maps: Vec<Map>,
    objects: HashMap<String, Option<Object_>>,
    cache: HashMap<u64, Rc<Symbolized>>,
    /// Files that could not be read, reported once each.
    pub unreadable: Vec<String>,
}

impl Object_ {
    fn open(path: &str) -> Result<Object_, String> {
        let data = std::fs::read(path).map_err(|e| e.to_string())?;
        let file = object::File::parse(&*data).map_err(|e| e.to_string())?;
        let segments = file
            .segments()
            .map(|s| {
                let (off, size) = s.file_range();
                (off, size, s.address())
            })
            .collect();
        let build_id: Option<String> = file
            .build_id()
            .ok()
            .flatten()
            .map(|id| id.iter().map(|b| format!("{b:02x}")).collect());
        // A file without debug information may have it in a separate file
        // (Debian's -dbgsym packages); without either, the loader still
        // reads the symbol table. A file it cannot load at all is named by
        // offset.
        let debug_file = if file.section_by_name(".debug_info").is_some() {
            None
        } else {
            let link = file
                .gnu_debuglink()
                .ok()
                .flatten()
                .map(|(name, _)| String::from_utf8_lossy(name).into_owned());
            separate_debug_file(path, build_id.as_deref(), link.as_deref())
        };
        let loader = debug_file
            .and_then(|d| addr2line::Loader::new(d).ok())
            .or_else(|| addr2line::Loader::new(path).ok());
        Ok(Object_ {
            loader,
            segments,
            build_id,
        })
    }

    /// The file's virtual address for a file offset.
    fn vaddr(&self, off: u64) -> u64 {
        self.segments
            .iter()
            .find(|&&(o, size, _)| off >= o && off < o + size)
            .map(|&(o, _, addr)| off - o + addr)
            .unwrap_or(off)
    }

    fn frames(&self, addr: u64) -> Vec<Frame> {
        let Some(loader) = &self.loader else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Ok(mut iter) = loader.find_frames(addr) {
            while let Ok(Some(f)) = iter.next() {
                let Some(function) = f.function.as_ref().and_then(|n| n.demangle().ok()) else {
                    continue;
                };
                let (file, line) = match &f.location {
                    Some(loc) => (loc.file.map(str::to_string), loc.line.unwrap_or(0)),
                    None => (None, 0),
                };
                out.push(Frame {
                    function: function.into_owned(),
                    file,
                    line,
                });
            }
        }
        if out.is_empty() {
            if let Some(name) = loader.find_symbol(addr) {
                let location = loader.find_location(addr).ok().flatten();
                out.push(Frame {
                    function: addr2line::demangle_auto(name.into(), None).into_owned(),
                    file: location.as_ref().and_then(|l| l.file.map(str::to_string)),
                    line: location.and_then(|l| l.line).unwrap_or(0),
                });
            }
        }
        out
    }
}

/// Where GDB looks for a file's separate debug information: by build id
/// under /usr/lib/debug/.build-id, then by its .gnu_debuglink name beside
/// it, in .debug/ beside it, and under /usr/lib/debug.
fn separate_debug_file(path: &str, build_id: Option<&str>, link: Option<&str>) -> Option<String> {
    const ROOT: &str = "/usr/lib/debug";
    let mut candidates = Vec::new();
    if let Some(id) = build_id.filter(|id| id.len() > 2) {
        candidates.push(format!("{ROOT}/.build-id/{}/{}.debug", &id[..2], &id[2..]));
    }
    if let Some(link) = link {
        let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
        candidates.push(format!("{dir}/{link}"));
        candidates.push(format!("{dir}/.debug/{link}"));
        candidates.push(format!("{ROOT}{dir}/{link}"));
    }
    candidates
        .into_iter()
        .find(|c| c != path && std::path::Path::new(c).is_file())
}

fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

impl Symbolizer {
    pub fn new(maps: Vec<Map>) -> Self {
        Symbolizer {
            maps,
            objects: HashMap::new(),
            cache: HashMap::new(),
            unreadable: Vec::new(),
        }
    }

    pub fn maps(&self) -> &[Map] {
        &self.maps
    }

    /// The GNU build id of a mapped file, when it has one.
    pub fn build_id(&mut self, map: usize) -> Option<String> {
        let path = self.maps[map].path.clone();
        self.object(&path).and_then(|o| o.build_id.clone())
    }

    fn object(&mut self, path: &str) -> Option<&Object_> {
        if !self.objects.contains_key(path) {
            let o = match Object_::open(path) {
                Ok(o) => Some(o),
                Err(e) => {
                    self.unreadable.push(format!("{path}: {e}"));
                    None
                }
            };
            self.objects.insert(path.to_string(), o);
        }
        self.objects[path].as_ref()
    }

    /// Symbolizes a return address (the call is the byte before it).
    pub fn symbolize(&mut self, pc: u64) -> Rc<Symbolized> {
        if let Some(s) = self.cache.get(&pc) {
            return s.clone();
        }
        let probe = pc.saturating_sub(1);
        let map = self
            .maps
            .iter()
            .position(|m| probe >= m.start && probe < m.end);
        let frames = match map {
            None => vec![Frame {
                function: format!("0x{pc:x}"),
                file: None,
                line: 0,
            }],
            Some(i) => {
                let m = self.maps[i].clone();
                let off = probe - m.start + m.offset;
                let mut frames = match self.object(&m.path) {
                    Some(o) => o.frames(o.vaddr(off)),
                    None => Vec::new(),
                };
                if frames.is_empty() {
                    frames.push(Frame {
                        function: format!("{}+0x{off:x}", basename(&m.path)),
                        file: None,
                        line: 0,
                    });
                }
                frames
            }
        };
        let s = Rc::new(Symbolized { map, frames });
        self.cache.insert(pc, s.clone());
        s
    }
}
