//! pprof's profile format (the `perftools.profiles.Profile` message, gzip
//! compressed), declared with prost's derive so no protobuf compiler is
//! needed.

use std::collections::HashMap;

use prost::Message;

use crate::profile::Totals;
use crate::raw::Dump;
use crate::symbolize::Symbolizer;

#[derive(Clone, PartialEq, Message)]
pub struct Profile {
    #[prost(message, repeated, tag = "1")]
    pub sample_type: Vec<ValueType>,
    #[prost(message, repeated, tag = "2")]
    pub sample: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub mapping: Vec<Mapping>,
    #[prost(message, repeated, tag = "4")]
    pub location: Vec<Location>,
    #[prost(message, repeated, tag = "5")]
    pub function: Vec<Function>,
    #[prost(string, repeated, tag = "6")]
    pub string_table: Vec<String>,
    #[prost(int64, tag = "9")]
    pub time_nanos: i64,
    #[prost(int64, tag = "10")]
    pub duration_nanos: i64,
    #[prost(message, optional, tag = "11")]
    pub period_type: Option<ValueType>,
    #[prost(int64, tag = "12")]
    pub period: i64,
    #[prost(int64, repeated, tag = "13")]
    pub comment: Vec<i64>,
    #[prost(int64, tag = "14")]
    pub default_sample_type: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct ValueType {
    #[prost(int64, tag = "1")]
    pub r#type: i64,
    #[prost(int64, tag = "2")]
    pub unit: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(uint64, repeated, tag = "1")]
    pub location_id: Vec<u64>,
    #[prost(int64, repeated, tag = "2")]
    pub value: Vec<i64>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Mapping {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub memory_start: u64,
    #[prost(uint64, tag = "3")]
    pub memory_limit: u64,
    #[prost(uint64, tag = "4")]
    pub file_offset: u64,
    #[prost(int64, tag = "5")]
    pub filename: i64,
    #[prost(int64, tag = "6")]
    pub build_id: i64,
    #[prost(bool, tag = "7")]
    pub has_functions: bool,
    #[prost(bool, tag = "8")]
    pub has_filenames: bool,
    #[prost(bool, tag = "9")]
    pub has_line_numbers: bool,
    #[prost(bool, tag = "10")]
    pub has_inline_frames: bool,
}

#[derive(Clone, PartialEq, Message)]
pub struct Location {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(uint64, tag = "2")]
    pub mapping_id: u64,
    #[prost(uint64, tag = "3")]
    pub address: u64,
    /// Innermost (inlined) function first.
    #[prost(message, repeated, tag = "4")]
    pub line: Vec<Line>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Line {
    #[prost(uint64, tag = "1")]
    pub function_id: u64,
    #[prost(int64, tag = "2")]
    pub line: i64,
}

#[derive(Clone, PartialEq, Message)]
pub struct Function {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int64, tag = "2")]
    pub name: i64,
    #[prost(int64, tag = "3")]
    pub system_name: i64,
    #[prost(int64, tag = "4")]
    pub filename: i64,
}

#[derive(Default)]
struct Strings {
    table: Vec<String>,
    index: HashMap<String, i64>,
}

impl Strings {
    fn new() -> Self {
        let mut s = Strings::default();
        s.get(""); // index 0 is always the empty string
        s
    }
    fn get(&mut self, s: &str) -> i64 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.table.len() as i64;
        self.table.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// The profile of one dump, its stacks added up by `by_stack`.
pub fn build(dump: &Dump, stacks: &[(Vec<u64>, Totals)], sym: &mut Symbolizer) -> Profile {
    let mut strings = Strings::new();
    let vt = |t: &str, u: &str, strings: &mut Strings| ValueType {
        r#type: strings.get(t),
        unit: strings.get(u),
    };
    let sample_type = vec![
        vt("alloc_objects", "count", &mut strings),
        vt("alloc_space", "bytes", &mut strings),
        vt("inuse_objects", "count", &mut strings),
        vt("inuse_space", "bytes", &mut strings),
    ];
    let period_type = Some(vt("space", "bytes", &mut strings));

    let mut mapping = Vec::new();
    for i in 0..sym.maps().len() {
        let build_id = sym.build_id(i).unwrap_or_default();
        let m = &sym.maps()[i];
        mapping.push(Mapping {
            id: i as u64 + 1,
            memory_start: m.start,
            memory_limit: m.end,
            file_offset: m.offset,
            filename: strings.get(&m.path),
            build_id: strings.get(&build_id),
            has_functions: true,
            has_filenames: true,
            has_line_numbers: true,
            has_inline_frames: true,
        });
    }

    let mut functions: HashMap<(String, String), u64> = HashMap::new();
    let mut function = Vec::new();
    let mut locations: HashMap<u64, u64> = HashMap::new();
    let mut location = Vec::new();
    let mut sample = Vec::new();
    for (pcs, t) in stacks {
        let mut ids = Vec::with_capacity(pcs.len());
        for &pc in pcs {
            let id = match locations.get(&pc) {
                Some(&id) => id,
                None => {
                    let s = sym.symbolize(pc);
                    let mut line = Vec::new();
                    for f in &s.frames {
                        let file = f.file.clone().unwrap_or_default();
                        let key = (f.function.clone(), file.clone());
                        let function_id = match functions.get(&key) {
                            Some(&id) => id,
                            None => {
                                let id = function.len() as u64 + 1;
                                let name = strings.get(&f.function);
                                function.push(Function {
                                    id,
                                    name,
                                    system_name: name,
                                    filename: strings.get(&file),
                                });
                                functions.insert(key, id);
                                id
                            }
                        };
                        line.push(Line {
                            function_id,
                            line: f.line as i64,
                        });
                    }
                    let id = location.len() as u64 + 1;
                    location.push(Location {
                        id,
                        mapping_id: s.map.map_or(0, |m| m as u64 + 1),
                        // The call instruction, as the line table has it.
                        address: pc.saturating_sub(1),
                        line,
                    });
                    locations.insert(pc, id);
                    id
                }
            };
            ids.push(id);
        }
        sample.push(Sample {
            location_id: ids,
            value: vec![
                t.alloc_objects.round() as i64,
                t.alloc_bytes.round() as i64,
                t.inuse_objects.round() as i64,
                t.inuse_bytes.round() as i64,
            ],
        });
    }
    let comment = vec![strings.get(&format!(
        "liballoc heap profile of pid {}, {} samples at one per {} bytes, {} freed samples dropped",
        dump.pid,
        dump.samples.len(),
        dump.rate,
        dump.dropped
    ))];
    let default_sample_type = strings.get("inuse_space");
    Profile {
        sample_type,
        sample,
        mapping,
        location,
        function,
        string_table: strings.table,
        time_nanos: 0,
        duration_nanos: dump.time_ms as i64 * 1_000_000,
        period_type,
        period: dump.rate as i64,
        comment,
        default_sample_type,
    }
}

/// The profile, encoded and gzip compressed, as pprof reads it.
pub fn encode(p: &Profile) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&p.encode_to_vec())?;
    gz.finish()
}
