//! A stack unwinder over DWARF call-frame information (`.eh_frame`) for
//! x86-64, for code built with or without frame pointers, that allocates
//! nothing, takes no lock and remembers what it decoded.
//!
//! How a frame is unwound. The module holding the frame's code address is
//! found with `_dl_find_object` (lock-free), and the function's FDE by a
//! binary search of that module's `.eh_frame_hdr` table. The FDE's CIE and
//! its own call-frame program are then run up to the address, which gives
//! the frame's row: where its canonical frame address (CFA) is (`rsp` or
//! `rbp` plus an offset, or the word at `rbp` plus an offset, as a
//! realigned `main` has it), where the caller's `rbp` was saved, and that
//! the return address lies just below the CFA (or that there is no caller:
//! `_start` and `clone3` say so). The caller's `rsp` is the CFA. Only
//! `rbp` and `rsp` are tracked: no rule an x86-64 compiler writes for a
//! function's body needs another register.
//!
//! What is remembered. A row depends on the code address alone, so rows
//! are kept in a table of [`ROWS`] entries indexed by a hash of the
//! address (`seqcache.rs`: any thread reads and writes it without a
//! lock). A frame whose row is there costs a hash, a
//! few loads and two bounded reads of the stack; the frames shared by the
//! traces of a process (`main`, the loop that calls the allocator, the
//! C library's start) are decoded once. The same table keeps what each CIE
//! says (keyed by the CIE's address, never a code address): a linker
//! merges a module's identical CIEs, so a few serve all its functions.
//!
//! What it does not do. Anything outside that model (a signal frame, a
//! rule through another register or a DWARF expression of another shape,
//! an `.eh_frame_hdr` table in another encoding, code in no loaded module,
//! a stack read outside the thread's stack) ends the walk with `None`,
//! and the caller falls back to a complete unwinder (libgcc's). Every
//! read of the stack is checked against the thread's bounds; the tables
//! are the loader's, read as libgcc reads them. Rows are never dropped:
//! code loaded by `dlopen` where an unloaded library's code was may find
//! that library's rows, which can make its traces wrong (never a read
//! outside the stack).

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]

use core::mem::MaybeUninit;

use super::seqcache::SeqCache;
use super::trace;
use crate::sys::loader;

/// Entries of the row cache (a power of two).
const ROWS: usize = 8192;

/// DWARF's x86-64 register numbers of the registers the unwinder tracks.
const RBP: u64 = 6;
const RSP: u64 = 7;
/// The return-address column of every x86-64 CIE.
const RA: u64 = 16;

/// Where a frame's CFA is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cfa {
    /// `rsp + off`.
    Rsp(i64),
    /// `rbp + off`.
    Rbp(i64),
    /// The word at `rbp + off` (a function that realigns its stack).
    AtRbp(i64),
    /// Through another register or expression: not unwound here.
    Other,
}

/// Where the caller's `rbp` is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fp {
    /// Still in `rbp` (never saved, or restored).
    Same,
    /// Saved at `CFA + off`.
    AtCfa(i64),
    /// Saved at `rbp + off` (a realigning function's expression rule).
    AtRbp(i64),
    /// Any other rule: not unwound here.
    Other,
}

/// Where the return address is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    /// Saved at `CFA + off`.
    AtCfa(i64),
    /// No caller: the outermost frame.
    Undefined,
    /// Any other rule: not unwound here.
    Other,
}

/// One row of the call-frame table: the rules at one code address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Row {
    cfa: Cfa,
    fp: Fp,
    ret: Ret,
}

impl Row {
    /// The row before a CIE's initial instructions run.
    const START: Row = Row {
        cfa: Cfa::Other,
        fp: Fp::Same,
        ret: Ret::Other,
    };

    /// The row as one cache word (never 0), when it fits: bits 0-1 the CFA
    /// kind (1 `rsp`, 2 `rbp`, 3 the word at `rbp`), bits 2-3 the `rbp`
    /// rule (0 same, 1 at the CFA, 2 at `rbp`), bit 4 the outermost frame,
    /// bits 16-31 the `rbp` rule's offset, bits 32-63 the CFA's.
    fn pack(self) -> Option<u64> {
        if self.ret == Ret::Undefined {
            return Some(1 << 4);
        }
        if self.ret != Ret::AtCfa(-8) {
            return None;
        }
        let (ck, co) = match self.cfa {
            Cfa::Rsp(o) => (1, o),
            Cfa::Rbp(o) => (2, o),
            Cfa::AtRbp(o) => (3, o),
            Cfa::Other => return None,
        };
        let (fk, fo) = match self.fp {
            Fp::Same => (0, 0),
            Fp::AtCfa(o) => (1, o),
            Fp::AtRbp(o) => (2, o),
            Fp::Other => return None,
        };
        let co = i32::try_from(co).ok()?;
        let fo = i16::try_from(fo).ok()?;
        Some(ck | fk << 2 | u64::from(fo as u16) << 16 | u64::from(co as u32) << 32)
    }

    /// The row of cache word `w` (from [`Row::pack`]).
    fn unpack(w: u64) -> Row {
        if w & (1 << 4) != 0 {
            return Row {
                cfa: Cfa::Other,
                fp: Fp::Other,
                ret: Ret::Undefined,
            };
        }
        let co = i64::from((w >> 32) as u32 as i32);
        let fo = i64::from((w >> 16) as u16 as i16);
        Row {
            cfa: match w & 3 {
                1 => Cfa::Rsp(co),
                2 => Cfa::Rbp(co),
                _ => Cfa::AtRbp(co),
            },
            fp: match (w >> 2) & 3 {
                0 => Fp::Same,
                1 => Fp::AtCfa(fo),
                _ => Fp::AtRbp(fo),
            },
            ret: Ret::AtCfa(-8),
        }
    }
}

/// A bounded reader of the loader's unwind tables.
struct Bytes {
    at: usize,
    end: usize,
}

impl Bytes {
    fn u8(&mut self) -> Option<u8> {
        if self.at >= self.end {
            return None;
        }
        // SAFETY: inside the table range the caller took from the loader
        // (an FDE or CIE's own length, or the `.eh_frame_hdr` header).
        let v = unsafe { *(self.at as *const u8) };
        self.at += 1;
        Some(v)
    }

    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        if self.end.saturating_sub(self.at) < N {
            return None;
        }
        // SAFETY: N bytes inside the range (as for `u8`).
        let v = unsafe { (self.at as *const [u8; N]).read_unaligned() };
        self.at += N;
        Some(v)
    }

    /// A LEB128 number's bits, the bits it had, and its last byte.
    fn leb(&mut self) -> Option<(u64, u32, u8)> {
        let (mut v, mut shift) = (0u64, 0u32);
        loop {
            let b = self.u8()?;
            if shift < 64 {
                v |= u64::from(b & 0x7f) << shift;
            }
            shift += 7;
            if b & 0x80 == 0 {
                return Some((v, shift, b));
            }
        }
    }

    fn uleb(&mut self) -> Option<u64> {
        Some(self.leb()?.0)
    }

    fn sleb(&mut self) -> Option<i64> {
        let (v, shift, last) = self.leb()?;
        // The sign is the last byte's bit 6.
        if shift < 64 && last & 0x40 != 0 {
            Some((v | u64::MAX << shift) as i64)
        } else {
            Some(v as i64)
        }
    }

    /// A pointer in encoding `enc` (`DW_EH_PE_*`): absolute, or relative to
    /// its own address (`pcrel`) or to `data` (`datarel`). Inline for the
    /// encodings every linker and compiler writes on x86-64 (a signed
    /// 4-byte offset from the field for code addresses, an unsigned 4-byte
    /// count, a signed 4-byte range), four of which each decode reads.
    #[inline(always)]
    fn pointer(&mut self, enc: u8, data: usize) -> Option<usize> {
        // pcrel sdata4 (code addresses), sdata4 (an FDE's range), udata4
        // (the table's count).
        if matches!(enc, 0x1b | 0x0b | 0x03) {
            let field = self.at;
            let v = u32::from_le_bytes(self.take::<4>()?);
            return Some(match enc {
                0x1b => field.wrapping_add(v as i32 as isize as usize),
                0x0b => v as i32 as isize as usize,
                _ => v as usize,
            });
        }
        self.pointer_other(enc, data)
    }

    /// [`Bytes::pointer`] in the other encodings.
    #[inline(never)]
    fn pointer_other(&mut self, enc: u8, data: usize) -> Option<usize> {
        let field = self.at;
        let v = match enc & 0x0f {
            0x00 | 0x04 | 0x0c => u64::from_le_bytes(self.take::<8>()?) as usize,
            0x01 => self.uleb()? as usize,
            0x02 => usize::from(u16::from_le_bytes(self.take::<2>()?)),
            0x03 => u32::from_le_bytes(self.take::<4>()?) as usize,
            0x09 => self.sleb()? as usize,
            0x0a => i16::from_le_bytes(self.take::<2>()?) as usize,
            0x0b => i32::from_le_bytes(self.take::<4>()?) as usize,
            _ => return None,
        };
        match enc & 0x70 {
            0x00 => Some(v),
            0x10 => Some(field.wrapping_add(v)),
            0x30 => Some(data.wrapping_add(v)),
            _ => None,
        }
    }
}

/// What a CIE says of the FDEs that use it.
struct Cie {
    code_align: u64,
    data_align: i64,
    /// The FDE's pointer encoding (`R` augmentation; absolute without).
    fde_enc: u8,
    /// Whether the FDE has augmentation data (`z`).
    has_aug: bool,
    /// The initial instructions.
    insns: Bytes,
}

/// Parses the CIE at `at`; `None` for a signal frame's (`S`), a 64-bit
/// one, or anything it does not know.
fn parse_cie(at: usize) -> Option<Cie> {
    let mut b = Bytes { at, end: at + 8 };
    let len = u32::from_le_bytes(b.take::<4>()?);
    if len == 0 || len == u32::MAX {
        return None;
    }
    b.end = at + 4 + len as usize;
    if u32::from_le_bytes(b.take::<4>()?) != 0 {
        return None;
    }
    let version = b.u8()?;
    if version != 1 && version != 3 {
        return None;
    }
    // The augmentation string, at most a few letters.
    let mut aug = [0u8; 8];
    let mut n = 0;
    loop {
        let c = b.u8()?;
        if c == 0 {
            break;
        }
        if n == aug.len() {
            return None;
        }
        aug[n] = c;
        n += 1;
    }
    let code_align = b.uleb()?;
    let data_align = b.sleb()?;
    let ra = if version == 1 {
        u64::from(b.u8()?)
    } else {
        b.uleb()?
    };
    if ra != RA {
        return None;
    }
    let mut cie = Cie {
        code_align,
        data_align,
        fde_enc: 0,
        has_aug: false,
        insns: Bytes { at: 0, end: b.end },
    };
    let aug = &aug[..n];
    if let Some((&b'z', rest)) = aug.split_first() {
        cie.has_aug = true;
        let len = b.uleb()? as usize;
        let after = b.at.checked_add(len)?;
        for &c in rest {
            match c {
                b'R' => cie.fde_enc = b.u8()?,
                b'L' => {
                    b.u8()?;
                }
                b'P' => {
                    let enc = b.u8()?;
                    b.pointer(enc & 0x7f, 0)?;
                }
                _ => return None,
            }
        }
        b.at = after;
    } else if !aug.is_empty() {
        return None;
    }
    cie.insns.at = b.at;
    Some(cie)
}

/// Runs call-frame program `p` from code address `loc`, updating `out`,
/// until it ends or an advance passes `pc`. `init` is the row after the
/// CIE's initial instructions (for `DW_CFA_restore`). `None` on an opcode
/// it does not know or a program that runs off its end.
///
/// The loop handles the operations that make up most programs (advances,
/// `DW_CFA_offset`, `DW_CFA_restore`, `DW_CFA_def_cfa_offset`) with few
/// live values, so that they stay in registers; the others go to [`rare`]
/// (out of line). With every operation in one loop, the compiler kept the
/// location and the bound on the stack, and an operation cost about 44
/// instructions. The three most frequent (an advance, then
/// `DW_CFA_def_cfa_offset`, then `DW_CFA_offset`: a `push` in a prologue
/// or an epilogue is one of each) are tested before the jump table; with
/// the row's rules as locals, that took a program run from about 670
/// instructions to 640 (callgrind, `git log -p` profiled at a 2 KiB rate).
fn run(
    p: &mut Bytes,
    cie: &Cie,
    mut loc: usize,
    pc: usize,
    out: &mut Row,
    init: &Row,
) -> Option<()> {
    // The row's three rules as locals of their own, never borrowed: so
    // they stay in registers (as one `Row` they lived on the stack, and a
    // `DW_CFA_def_cfa_offset` cost a load and two stores).
    let Row {
        mut cfa,
        mut fp,
        mut ret,
    } = *out;
    // DW_CFA_remember_state's stack (not cleared: only the entries below
    // `depth` are read).
    let mut saved = Saved {
        rows: [const { MaybeUninit::<Row>::uninit() }; 4],
        depth: 0,
    };
    let (da, ca) = (cie.data_align, cie.code_align);
    let (mut at, end) = (p.at, p.end);
    while at < end {
        // SAFETY: at < end, inside the program's range (an FDE or CIE's
        // own length, taken from the loader's table).
        let op = unsafe { *(at as *const u8) };
        at += 1;
        let arg = u64::from(op & 0x3f);
        // The three operations that make up most programs first, tested
        // in the order of their frequency (advances, then CFA offsets, then
        // saved registers: a push is one of each), without a jump table.
        if op & 0xc0 == 0x40 {
            // DW_CFA_advance_loc
            loc = loc.wrapping_add((arg * ca) as usize);
            if loc > pc {
                break;
            }
            continue;
        }
        if op == 0x0e {
            // DW_CFA_def_cfa_offset
            let (v, next) = uleb_at(at, end)?;
            at = next;
            cfa = with_offset(cfa, v as i64);
            continue;
        }
        if op & 0xc0 == 0x80 {
            // DW_CFA_offset
            let (v, next) = uleb_at(at, end)?;
            at = next;
            let off = (v as i64).wrapping_mul(da);
            match arg {
                RBP => fp = Fp::AtCfa(off),
                RA => ret = Ret::AtCfa(off),
                _ => {}
            }
            continue;
        }
        // The others every function's program has (each epilogue's
        // remember/restore pair) without a call.
        match op {
            // DW_CFA_restore
            0xc0..=0xff => match arg {
                RBP => fp = init.fp,
                RA => ret = init.ret,
                _ => {}
            },
            // DW_CFA_advance_loc1
            0x02 => {
                if at >= end {
                    return None;
                }
                // SAFETY: at < end, inside the program's range.
                let delta = u64::from(unsafe { *(at as *const u8) });
                at += 1;
                loc = loc.wrapping_add((delta * ca) as usize);
                if loc > pc {
                    break;
                }
            }
            // DW_CFA_remember_state
            0x0a => {
                saved.rows.get_mut(saved.depth)?.write(Row { cfa, fp, ret });
                saved.depth += 1;
            }
            // DW_CFA_restore_state: the CFA's rule with the registers', as
            // an epilogue's `remember_state ... ret; restore_state` needs.
            0x0b => {
                saved.depth = saved.depth.checked_sub(1)?;
                // SAFETY: entries below `saved.depth` were written by
                // DW_CFA_remember_state.
                Row { cfa, fp, ret } = unsafe { saved.rows[saved.depth].assume_init() };
            }
            _ => {
                p.at = at;
                let mut r = Row { cfa, fp, ret };
                let next = rare(op, p, cie, loc, &mut r, init)?;
                Row { cfa, fp, ret } = r;
                at = p.at;
                loc = next;
                if loc > pc {
                    break;
                }
            }
        }
    }
    p.at = at;
    *out = Row { cfa, fp, ret };
    Some(())
}

/// The unsigned LEB128 number at `at` (before `end`) and the address after
/// it; one byte, the common case, costs a test.
#[inline(always)]
fn uleb_at(at: usize, end: usize) -> Option<(u64, usize)> {
    if at < end {
        // SAFETY: at < end, inside the caller's range.
        let b = unsafe { *(at as *const u8) };
        if b < 0x80 {
            return Some((u64::from(b), at + 1));
        }
    }
    let mut p = Bytes { at, end };
    let v = p.uleb()?;
    Some((v, p.at))
}

/// `DW_CFA_remember_state`'s stack.
struct Saved {
    rows: [MaybeUninit<Row>; 4],
    depth: usize,
}

/// [`run`]'s other operations (`op`, read from `p`, which is at its
/// operands; not the primary advance, offset and restore opcodes,
/// `DW_CFA_def_cfa_offset`, `DW_CFA_advance_loc1` nor the
/// remember/restore pair, which [`run`] handles) at code address `loc`:
/// the code address after it (an advance moves it), `None` as for
/// [`run`].
#[inline(never)]
fn rare(
    op: u8,
    p: &mut Bytes,
    cie: &Cie,
    mut loc: usize,
    row: &mut Row,
    init: &Row,
) -> Option<usize> {
    let da = cie.data_align;
    match op {
        0x00 => {}
        // DW_CFA_set_loc
        0x01 => loc = p.pointer(cie.fde_enc, 0)?,
        // DW_CFA_advance_loc2, 4 (advance_loc1 is run's)
        0x03 | 0x04 => {
            let delta = if op == 0x03 {
                u64::from(u16::from_le_bytes(p.take::<2>()?))
            } else {
                u64::from(u32::from_le_bytes(p.take::<4>()?))
            };
            loc = loc.wrapping_add((delta * cie.code_align) as usize);
        }
        // DW_CFA_offset_extended
        0x05 => {
            let reg = p.uleb()?;
            let off = (p.uleb()? as i64).wrapping_mul(da);
            set_saved(row, reg, off);
        }
        // DW_CFA_restore_extended
        0x06 => {
            let reg = p.uleb()?;
            restore(row, init, reg);
        }
        // DW_CFA_undefined
        0x07 => match p.uleb()? {
            RBP => row.fp = Fp::Other,
            RA => row.ret = Ret::Undefined,
            _ => {}
        },
        // DW_CFA_same_value
        0x08 => match p.uleb()? {
            RBP => row.fp = Fp::Same,
            RA => row.ret = Ret::Other,
            _ => {}
        },
        // DW_CFA_register
        0x09 => {
            let reg = p.uleb()?;
            p.uleb()?;
            other_rule(row, reg);
        }
        // DW_CFA_def_cfa
        0x0c => {
            let reg = p.uleb()?;
            let off = p.uleb()? as i64;
            row.cfa = cfa_reg(reg, off);
        }
        // DW_CFA_def_cfa_register
        0x0d => {
            let reg = p.uleb()?;
            row.cfa = match row.cfa {
                Cfa::Rsp(o) | Cfa::Rbp(o) => cfa_reg(reg, o),
                _ => Cfa::Other,
            };
        }
        // DW_CFA_def_cfa_expression
        0x0f => {
            let mut e = block(p)?;
            row.cfa = match (e.u8(), e.sleb(), e.u8(), e.at == e.end) {
                // DW_OP_breg6 (rbp) off; DW_OP_deref
                (Some(0x76), Some(off), Some(0x06), true) => Cfa::AtRbp(off),
                _ => Cfa::Other,
            };
        }
        // DW_CFA_expression
        0x10 => {
            let reg = p.uleb()?;
            let mut e = block(p)?;
            if reg == RBP {
                row.fp = match (e.u8(), e.sleb(), e.at == e.end) {
                    // DW_OP_breg6 (rbp) off
                    (Some(0x76), Some(off), true) => Fp::AtRbp(off),
                    _ => Fp::Other,
                };
            } else {
                other_rule(row, reg);
            }
        }
        // DW_CFA_offset_extended_sf
        0x11 => {
            let reg = p.uleb()?;
            let off = p.sleb()?.wrapping_mul(da);
            set_saved(row, reg, off);
        }
        // DW_CFA_def_cfa_sf
        0x12 => {
            let reg = p.uleb()?;
            let off = p.sleb()?.wrapping_mul(da);
            row.cfa = cfa_reg(reg, off);
        }
        // DW_CFA_def_cfa_offset_sf
        0x13 => {
            let off = p.sleb()?.wrapping_mul(da);
            row.cfa = with_offset(row.cfa, off);
        }
        // DW_CFA_val_offset(_sf)
        0x14 | 0x15 => {
            let reg = p.uleb()?;
            if op == 0x14 {
                p.uleb()?;
            } else {
                p.sleb()?;
            }
            other_rule(row, reg);
        }
        // DW_CFA_val_expression
        0x16 => {
            let reg = p.uleb()?;
            block(p)?;
            other_rule(row, reg);
        }
        // DW_CFA_GNU_args_size
        0x2e => {
            p.uleb()?;
        }
        // DW_CFA_GNU_negative_offset_extended
        0x2f => {
            let reg = p.uleb()?;
            let off = (p.uleb()? as i64).wrapping_mul(da).wrapping_neg();
            set_saved(row, reg, off);
        }
        _ => return None,
    }
    Some(loc)
}

/// The CFA rule `reg + off`.
fn cfa_reg(reg: u64, off: i64) -> Cfa {
    match reg {
        RSP => Cfa::Rsp(off),
        RBP => Cfa::Rbp(off),
        _ => Cfa::Other,
    }
}

/// `cfa` with a new offset (`DW_CFA_def_cfa_offset`).
fn with_offset(cfa: Cfa, off: i64) -> Cfa {
    match cfa {
        Cfa::Rsp(_) => Cfa::Rsp(off),
        Cfa::Rbp(_) => Cfa::Rbp(off),
        _ => Cfa::Other,
    }
}

/// Register `reg` saved at `CFA + off`.
fn set_saved(row: &mut Row, reg: u64, off: i64) {
    match reg {
        RBP => row.fp = Fp::AtCfa(off),
        RA => row.ret = Ret::AtCfa(off),
        _ => {}
    }
}

/// Register `reg` given a rule the unwinder does not follow.
fn other_rule(row: &mut Row, reg: u64) {
    match reg {
        RBP => row.fp = Fp::Other,
        RA => row.ret = Ret::Other,
        _ => {}
    }
}

/// Register `reg` back to its rule after the CIE (`DW_CFA_restore`).
fn restore(row: &mut Row, init: &Row, reg: u64) {
    match reg {
        RBP => row.fp = init.fp,
        RA => row.ret = init.ret,
        _ => {}
    }
}

/// The DWARF expression block that follows (its length first).
fn block(p: &mut Bytes) -> Option<Bytes> {
    let len = p.uleb()? as usize;
    let end = p.at.checked_add(len)?;
    if end > p.end {
        return None;
    }
    let e = Bytes { at: p.at, end };
    p.at = end;
    Some(e)
}

/// The row of code address `pc` decoded from the tables: `None` when it
/// cannot be (no module, no table, no FDE covering it, or an FDE it does
/// not read).
fn decode(pc: usize) -> Option<Row> {
    let hdr = loader::eh_frame_hdr(pc)?;
    let mut h = Bytes {
        at: hdr,
        end: hdr + 4,
    };
    let [version, eh_ptr_enc, count_enc, table_enc] = h.take::<4>()?;
    // A sorted table of (start, FDE) pairs, each a 4-byte offset from the
    // header: what every linker writes.
    if version != 1 || table_enc != 0x3b {
        return None;
    }
    h.end = hdr + 4 + 16;
    h.pointer(eh_ptr_enc, hdr)?;
    let count = h.pointer(count_enc, hdr)?;
    let table = h.at;
    let entry = |i: usize| -> (usize, usize) {
        // SAFETY: i < count: an 8-byte entry of the loader's table.
        let w = unsafe { ((table + 8 * i) as *const [i32; 2]).read_unaligned() };
        (
            hdr.wrapping_add(w[0] as isize as usize),
            hdr.wrapping_add(w[1] as isize as usize),
        )
    };
    // The last entry starting at or below pc.
    let (mut lo, mut hi) = (0usize, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if entry(mid).0 <= pc {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    let (start, fde) = entry(lo.checked_sub(1)?);
    let mut f = Bytes {
        at: fde,
        end: fde + 8,
    };
    let len = u32::from_le_bytes(f.take::<4>()?);
    if len == 0 || len == u32::MAX {
        return None;
    }
    f.end = fde + 4 + len as usize;
    let cie_off = u32::from_le_bytes(f.take::<4>()?) as usize;
    let (cie, init) = cie_of((fde + 4).wrapping_sub(cie_off))?;
    let begin = f.pointer(cie.fde_enc, 0)?;
    let range = f.pointer(cie.fde_enc & 0x0f, 0)?;
    if begin != start || pc >= begin.wrapping_add(range) {
        return None;
    }
    if cie.has_aug {
        let n = f.uleb()? as usize;
        f.at = f.at.checked_add(n)?;
    }
    let mut row = init;
    run(&mut f, &cie, begin, pc, &mut row, &init)?;
    Some(row)
}

/// The CIE at `at` and the row its initial instructions set up: from the
/// cache (a linker merges a module's identical CIEs, so a module has a
/// few), or parsed and run.
fn cie_of(at: usize) -> Option<(Cie, Row)> {
    // Cached as the packed initial row, with (bit 5) whether FDEs have
    // augmentation data and (bits 8-15) their pointer encoding; only the
    // alignment factors every x86-64 CIE has (1 and -8), and a return
    // address at the CFA's word below.
    if let Some(w) = lookup(at) {
        let cie = Cie {
            code_align: 1,
            data_align: -8,
            fde_enc: (w >> 8) as u8,
            has_aug: w & (1 << 5) != 0,
            insns: Bytes { at: 0, end: 0 },
        };
        return Some((cie, Row::unpack(w & !0xffe0)));
    }
    let cie = parse_cie(at)?;
    let mut init = Row::START;
    let mut insns = Bytes {
        at: cie.insns.at,
        end: cie.insns.end,
    };
    run(&mut insns, &cie, 0, usize::MAX, &mut init, &Row::START)?;
    if cie.code_align == 1
        && cie.data_align == -8
        && init.ret == Ret::AtCfa(-8)
        && let Some(w) = init.pack()
    {
        debug_assert!(w & 0xffe0 == 0);
        store(
            at,
            w | u64::from(cie.has_aug) << 5 | u64::from(cie.fde_enc) << 8,
        );
    }
    Some((cie, init))
}

/// The row cache: code addresses to packed rows, and CIE addresses (never
/// a code address) to what their CIEs say.
static CACHE: SeqCache<ROWS> = SeqCache::new();

/// Maps the row cache (touched as it fills); false when it cannot be
/// mapped (then every frame is decoded).
pub fn init() -> bool {
    CACHE.init()
}

/// The cached word of `key` (a code address, or a CIE's address), if any.
#[inline(always)]
fn lookup(key: usize) -> Option<u64> {
    CACHE.lookup(key as u64)
}

/// Caches word `w` (not 0) for `key`.
fn store(key: usize, w: u64) {
    CACHE.store(key as u64, w);
}

/// The row of `pc` as a cache word ([`Row::pack`]): from the cache, or
/// decoded and cached. `None` when it cannot be decoded, or does not fit a
/// word (no x86-64 compiler writes such a row for a call site).
#[inline(always)]
fn row_word(pc: usize) -> Option<u64> {
    match lookup(pc) {
        Some(w) => Some(w),
        None => decode_word(pc),
    }
}

/// [`row_word`]'s miss.
#[inline(never)]
fn decode_word(pc: usize) -> Option<u64> {
    let w = decode(pc)?.pack()?;
    store(pc, w);
    Some(w)
}

/// The word at `a` when `[a, a + 8)` lies inside the stack `[lo, lo +
/// span)` and is aligned (`lo` is).
#[inline(always)]
fn read(a: usize, lo: usize, span: usize) -> Option<usize> {
    let off = a.wrapping_sub(lo);
    if off > span.wrapping_sub(8) || off & 7 != 0 {
        return None;
    }
    // SAFETY: inside the current thread's stack, which is mapped.
    Some(unsafe { *(a as *const usize) })
}

/// The current thread's call chain: writes into `out` the return address
/// of each frame, outermost last, leaving out the leading frames for
/// which `skip` holds (the caller's own), and returns how many it wrote.
/// `None` when a frame is outside what this unwinder reads (see the
/// module doc): the caller then unwinds another way.
///
/// Call [`init`] first for the cache (without it, every frame is
/// decoded).
#[inline(never)]
pub fn backtrace(out: &mut [usize], skip: impl Fn(usize) -> bool) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        let (pc, sp, fp): (usize, usize, usize);
        // SAFETY: reads three registers; writes nothing.
        unsafe {
            core::arch::asm!(
                "lea {pc}, [rip]",
                "mov {sp}, rsp",
                "mov {fp}, rbp",
                pc = out(reg) pc,
                sp = out(reg) sp,
                fp = out(reg) fp,
                options(nomem, nostack, preserves_flags)
            )
        };
        // The first address is where this function is now, not a return
        // address: its row is its own.
        walk(out, 0, pc, sp, fp, skip, &mut |_, _| {})
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (out, skip);
        None
    }
}

/// [`backtrace`] from a caller's frame that the frame-pointer chain found:
/// `ret` is the return address into that frame, `sp` the stack pointer
/// once the callee returned (the callee's CFA: its frame record's address
/// plus 16) and `fp` the frame pointer it restores (the saved one in that
/// record). `ret` is the first address written. The frames inside (the
/// caller's own, all with frame records) are thus never decoded.
#[inline(never)]
pub fn backtrace_from(out: &mut [usize], ret: usize, sp: usize, fp: usize) -> Option<usize> {
    backtrace_from_noting(out, ret, sp, fp, &mut |_, _| {})
}

/// [`backtrace_from`] that also hands `note` the address and value of
/// every stack word it reads (return addresses, saved frame pointers, a
/// frame address kept on the stack), in the order read, and `(0, fp)`
/// when a rule uses the `fp` given (code without frame pointers mostly
/// keeps something else there, and its rules never read it); a saved frame
/// pointer restored from the stack is noted only once a rule uses it, for
/// the same reason. The trace is a function of `ret`, `sp`, the words
/// noted and `fp` when noted (the rules it looks up never change), so a
/// caller can remember it and know it still holds while they do
/// (`diag::resume`).
#[inline(always)]
pub fn backtrace_from_noting(
    out: &mut [usize],
    ret: usize,
    sp: usize,
    fp: usize,
    note: &mut impl FnMut(usize, usize),
) -> Option<usize> {
    if out.is_empty() || ret == 0 {
        return Some(0);
    }
    #[cfg(target_arch = "x86_64")]
    {
        out[0] = ret;
        walk(out, 1, ret - 1, sp, fp, |_| false, note)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (sp, fp, note);
        None
    }
}

/// The walk of [`backtrace`] and [`backtrace_from`]: `out[..n]` is
/// written; `look` is the address whose row gives the current frame's
/// CFA (inside the call instruction for a return address), `sp` and `fp`
/// the registers in that frame. Frames for which `skip` holds are left
/// out while none was written. `note` gets each stack word read (see
/// [`backtrace_from_noting`]).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn walk(
    out: &mut [usize],
    mut n: usize,
    mut look: usize,
    mut sp: usize,
    mut fp: usize,
    skip: impl Fn(usize) -> bool,
    note: &mut impl FnMut(usize, usize),
) -> Option<usize> {
    let (lo, hi) = trace::stack_bounds(sp);
    let span = hi.wrapping_sub(lo);
    if sp.wrapping_sub(lo) >= span || span < 8 {
        return None;
    }
    let mut started = n > 0;
    // Where the current `fp` came from, until a rule first uses it: the
    // value given (0) or the stack word it was restored from. Code without
    // frame pointers keeps other values in the register, which its rules
    // never use: they are noted only once used.
    let mut fp_from = Some(0usize);
    while n < out.len() {
        // The row, packed (see Row::pack).
        let w = row_word(look)?;
        if w & (1 << 4) != 0 {
            break;
        }
        let (kind, off) = (w & 3, (w >> 32) as i32 as isize as usize);
        let fp_rule = (w >> 2) & 3;
        if (kind != 1 || fp_rule == 2)
            && let Some(a) = fp_from.take()
        {
            note(a, fp);
        }
        let at = if kind == 1 { sp } else { fp }.wrapping_add(off);
        let mut read_noted = |a: usize| {
            let v = read(a, lo, span)?;
            note(a, v);
            Some(v)
        };
        let cfa = if kind == 3 { read_noted(at)? } else { at };
        let ret = read_noted(cfa.wrapping_sub(8))?;
        let fp_off = (w >> 16) as u16 as i16 as isize as usize;
        if fp_rule != 0 {
            let a = if fp_rule == 1 { cfa } else { fp }.wrapping_add(fp_off);
            fp = read(a, lo, span)?;
            fp_from = Some(a);
        }
        // A caller's frame lies above its callee's.
        if cfa <= sp {
            return None;
        }
        sp = cfa;
        if ret == 0 {
            break;
        }
        if started || !skip(ret) {
            started = true;
            out[n] = ret;
            n += 1;
        }
        look = ret - 1;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::{c_int, c_void};

    const URC_NO_REASON: c_int = 0;
    const URC_END_OF_STACK: c_int = 5;

    unsafe extern "C" {
        fn _Unwind_Backtrace(
            trace: extern "C" fn(*mut c_void, *mut c_void) -> c_int,
            arg: *mut c_void,
        ) -> c_int;
        fn _Unwind_GetIP(ctx: *mut c_void) -> usize;
    }

    struct Walk {
        out: [usize; 64],
        n: usize,
    }

    extern "C" fn step(ctx: *mut c_void, arg: *mut c_void) -> c_int {
        // SAFETY: `arg` is the Walk below; `ctx` the unwinder's.
        let (w, ip) = unsafe { (&mut *arg.cast::<Walk>(), _Unwind_GetIP(ctx)) };
        if ip == 0 || w.n == w.out.len() {
            return URC_END_OF_STACK;
        }
        w.out[w.n] = ip;
        w.n += 1;
        URC_NO_REASON
    }

    /// libgcc's trace from the caller of this function: return addresses,
    /// the first one into the caller.
    #[inline(never)]
    fn libgcc() -> std::vec::Vec<usize> {
        let mut w = Walk { out: [0; 64], n: 0 };
        // SAFETY: `step` only touches `w`.
        unsafe { _Unwind_Backtrace(step, (&raw mut w).cast()) };
        // The first frame is this function's.
        w.out[1..w.n].to_vec()
    }

    /// This unwinder's trace from the caller of this function, as
    /// [`libgcc`]'s.
    #[inline(never)]
    fn ours() -> Option<std::vec::Vec<usize>> {
        let mut out = [0usize; 64];
        let n = backtrace(&mut out, |_| false)?;
        // The first frame is this function's.
        Some(out[1..n].to_vec())
    }

    /// This unwinder's trace from the caller of this function, started
    /// from this function's frame record ([`backtrace_from`]), as
    /// [`libgcc`]'s.
    #[inline(never)]
    fn from_record() -> Option<std::vec::Vec<usize>> {
        from_fp(trace::frame_pointer())
    }

    /// This unwinder's trace from the caller of the function whose frame
    /// record is at `fp`, started from the record.
    #[inline(never)]
    fn from_fp(fp: usize) -> Option<std::vec::Vec<usize>> {
        // SAFETY: caller's promise: a frame record at fp, the caller's
        // frame pointer, then the return address.
        let (saved, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        let mut out = [0usize; 64];
        let n = backtrace_from(&mut out, ret, fp + 16, saved)?;
        Some(out[..n].to_vec())
    }

    /// The three traces from the same caller frame agree.
    #[inline(never)]
    fn agree() -> usize {
        let (a, b, c) = (ours(), libgcc(), from_record());
        let a = a.expect("a frame the unwinder does not read");
        let c = c.expect("a frame the unwinder does not read");
        // The calls return to three places in this function; every frame
        // above it is the same.
        assert_eq!(a[1..], b[1..], "ours {a:x?} libgcc {b:x?}");
        assert_eq!(c[1..], b[1..], "from the record {c:x?} libgcc {b:x?}");
        a.len()
    }

    static DEPTHS: std::sync::Mutex<std::vec::Vec<usize>> =
        std::sync::Mutex::new(std::vec::Vec::new());

    extern "C" fn compare(a: *const c_void, b: *const c_void) -> c_int {
        DEPTHS.lock().unwrap().push(agree());
        // From this function's own record: the first frame is the C
        // library's, without a frame pointer (its CFA is rsp-based).
        let from = from_fp(trace::frame_pointer()).expect("a frame the unwinder does not read");
        let gcc = libgcc();
        assert_eq!(
            from[..],
            gcc[1..],
            "from the record {from:x?} libgcc {gcc:x?}"
        );
        // SAFETY: qsort passes two elements of the i32 array below.
        let (a, b) = unsafe { (*a.cast::<i32>(), *b.cast::<i32>()) };
        a.cmp(&b) as c_int
    }

    /// Sorts with the C library's `qsort` (built without frame pointers,
    /// recursing), checking the traces from its comparison callback.
    fn sort_checking(n: usize) -> std::vec::Vec<usize> {
        DEPTHS.lock().unwrap().clear();
        let mut v: std::vec::Vec<i32> = (0..n as i32).map(|i| (i * 7919) % 1009).collect();
        // SAFETY: a valid array of n i32s and a comparison of two.
        unsafe { libc::qsort(v.as_mut_ptr().cast(), n, 4, Some(compare)) };
        assert!(v.windows(2).all(|w| w[0] <= w[1]));
        DEPTHS.lock().unwrap().clone()
    }

    #[inline(never)]
    fn nested(k: usize) -> usize {
        if k == 0 {
            return agree();
        }
        core::hint::black_box(nested(k - 1))
    }

    #[test]
    fn traces_match_libgccs_through_the_c_library() {
        assert!(init());
        // Cold (every row decoded), then warm (from the cache).
        for _ in 0..2 {
            let depths = sort_checking(300);
            assert!(!depths.is_empty());
            let (min, max) = (depths.iter().min().unwrap(), depths.iter().max().unwrap());
            // The recursive merge sort puts frames of its own between
            // the callback and `qsort`'s caller, more for some pairs.
            assert!(max > min, "depths {min}..{max}");
        }
        let base = nested(0);
        assert_eq!(nested(20), base + 20);
    }

    #[test]
    fn traces_match_on_other_threads() {
        assert!(init());
        let ts: std::vec::Vec<_> = (0..4).map(|_| std::thread::spawn(|| nested(8))).collect();
        let depths: std::vec::Vec<usize> = ts.into_iter().map(|t| t.join().unwrap()).collect();
        assert!(depths.iter().all(|&d| d == depths[0] && d > 8));
    }

    #[test]
    fn reads_leb128_numbers() {
        let cases: [(&[u8], u64, i64); 6] = [
            (&[0x02], 2, 2),
            (&[0x7f], 127, -1),
            (&[0x80, 0x01], 128, 128),
            (&[0xe5, 0x8e, 0x26], 624_485, 624_485),
            (&[0xc0, 0xbb, 0x78], 1_973_696, -123_456),
            (&[0x78], 120, -8),
        ];
        for (bytes, u, i) in cases {
            let at = bytes.as_ptr() as usize;
            let mut b = Bytes {
                at,
                end: at + bytes.len(),
            };
            assert_eq!(b.uleb(), Some(u), "{bytes:x?}");
            assert_eq!(b.at, at + bytes.len());
            b.at = at;
            assert_eq!(b.sleb(), Some(i), "{bytes:x?}");
        }
        // Cut short: no number.
        let cut = [0x80u8, 0x80];
        let at = cut.as_ptr() as usize;
        assert_eq!(Bytes { at, end: at + 2 }.uleb(), None);
    }

    #[test]
    fn rows_pack_and_unpack() {
        let rows = [
            Row {
                cfa: Cfa::Rsp(8),
                fp: Fp::Same,
                ret: Ret::AtCfa(-8),
            },
            Row {
                cfa: Cfa::Rbp(16),
                fp: Fp::AtCfa(-16),
                ret: Ret::AtCfa(-8),
            },
            Row {
                cfa: Cfa::AtRbp(-8),
                fp: Fp::AtRbp(0),
                ret: Ret::AtCfa(-8),
            },
            Row {
                cfa: Cfa::Rsp(1 << 20),
                fp: Fp::AtCfa(-56),
                ret: Ret::AtCfa(-8),
            },
        ];
        for r in rows {
            assert_eq!(Row::unpack(r.pack().unwrap()), r);
        }
        let end = Row {
            cfa: Cfa::Rsp(8),
            fp: Fp::Same,
            ret: Ret::Undefined,
        };
        assert_eq!(Row::unpack(end.pack().unwrap()).ret, Ret::Undefined);
        let odd = [
            Row {
                cfa: Cfa::Other,
                ..rows[0]
            },
            Row {
                fp: Fp::Other,
                ..rows[0]
            },
            Row {
                ret: Ret::AtCfa(-16),
                ..rows[0]
            },
            Row {
                fp: Fp::AtCfa(1 << 20),
                ..rows[0]
            },
        ];
        for r in odd {
            assert!(r.pack().is_none());
        }
    }

    #[test]
    fn decodes_every_call_frame_instruction_it_knows() {
        let cie = Cie {
            code_align: 1,
            data_align: -8,
            fde_enc: 0x03,
            has_aug: true,
            insns: Bytes { at: 0, end: 0 },
        };
        // def_cfa rsp+8; offset ra at cfa-8
        let init_prog: [u8; 5] = [0x0c, 7, 8, 0x90, 1];
        let mut row = Row::START;
        let mut b = Bytes {
            at: init_prog.as_ptr() as usize,
            end: init_prog.as_ptr() as usize + init_prog.len(),
        };
        run(&mut b, &cie, 0x1000, usize::MAX, &mut row, &Row::START).unwrap();
        let init = row;
        assert_eq!(
            init,
            Row {
                cfa: Cfa::Rsp(8),
                fp: Fp::Same,
                ret: Ret::AtCfa(-8)
            }
        );
        // A function's program: push rbp; mov rbp, rsp; ... an epilogue
        // with remember/restore; then a realigned section.
        let prog: &[u8] = &[
            0x41, // advance 1 -> 0x1001
            0x0e, 16, // def_cfa_offset 16
            0x86, 2,    // offset rbp at cfa-16
            0x43, // advance 3 -> 0x1004
            0x0d, 6,    // def_cfa_register rbp
            0x0a, // remember_state
            0x02, 0x10, // advance_loc1 16 -> 0x1014
            0x0c, 7, 8,    // def_cfa rsp+8
            0xc6, // restore rbp
            0x41, // advance 1 -> 0x1015
            0x0b, // restore_state
            0x03, 0x00, 0x01, // advance_loc2 256 -> 0x1115
            0x2e, 0x10, // GNU_args_size
            0x10, 6, 2, 0x76, 0x00, // expression rbp: breg6 0
            0x0f, 3, 0x76, 0x78, 0x06, // def_cfa_expression: breg6 -8; deref
            0x44, // advance 4 -> 0x1119
            0x07, 16, // undefined ra
        ];
        let at = |pc: usize| {
            let mut row = init;
            let mut b = Bytes {
                at: prog.as_ptr() as usize,
                end: prog.as_ptr() as usize + prog.len(),
            };
            run(&mut b, &cie, 0x1000, pc, &mut row, &init).unwrap();
            row
        };
        assert_eq!(at(0x1000), init);
        let framed = Row {
            cfa: Cfa::Rbp(16),
            fp: Fp::AtCfa(-16),
            ret: Ret::AtCfa(-8),
        };
        assert_eq!(
            at(0x1001),
            Row {
                cfa: Cfa::Rsp(16),
                ..framed
            }
        );
        assert_eq!(at(0x1004), framed);
        assert_eq!(at(0x1013), framed);
        assert_eq!(at(0x1014), init);
        // restore_state brings back the rules of the function's body.
        assert_eq!(at(0x1015), framed);
        assert_eq!(
            at(0x1115),
            Row {
                cfa: Cfa::AtRbp(-8),
                fp: Fp::AtRbp(0),
                ret: Ret::AtCfa(-8)
            }
        );
        assert_eq!(at(0x1119).ret, Ret::Undefined);
        // A truncated program or an unknown opcode is not read.
        let mut row = init;
        let bad: [u8; 2] = [0x0c, 7];
        let mut b = Bytes {
            at: bad.as_ptr() as usize,
            end: bad.as_ptr() as usize + bad.len(),
        };
        assert!(run(&mut b, &cie, 0, usize::MAX, &mut row, &init).is_none());
        let unknown: [u8; 1] = [0x3f];
        let mut b = Bytes {
            at: unknown.as_ptr() as usize,
            end: unknown.as_ptr() as usize + 1,
        };
        assert!(run(&mut b, &cie, 0, usize::MAX, &mut row, &init).is_none());
    }
}
