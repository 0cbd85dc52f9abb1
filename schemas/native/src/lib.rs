//! Reads a batch of fleetpulse request messages (JSON) into typed columns.
//!
//! `schemas/scan.py` loads this library with ctypes and calls it once per
//! batch: no Python runs per message or per event. A message is one request
//! event, or an envelope (`{"type": "batch", "version": 1, "events": [...]}`)
//! of request events. The fields, their kinds and the envelope's header come
//! from Python (`schemas.v1.REQUEST`, one definition) when the schema is made.
//!
//! The scanner accepts a strict subset of JSON and vouches for nothing it is
//! unsure of: a message holding anything outside the subset is marked
//! "unusual" and the caller sends it, on its own, to the per-message decoders,
//! which give the validator's own verdict. The subset:
//!
//! - objects whose keys are fields of the schema (or `events` at the top), each
//!   key once, with no escape in the key;
//! - numbers in JSON's grammar: an integer literal (no fraction, no exponent)
//!   has at most 18 digits, and is read exactly as an integer first, as Python
//!   does (`-0` is `0`; in a number field, then its float); an integer field
//!   takes integer literals only;
//! - strings with no backslash escape and no control character, in UTF-8;
//! - lists of such strings for list fields; `null` for any field (read as
//!   absent: the caller's column checks refuse it where a field is required);
//! - nothing but whitespace around tokens, and nothing after the object.
//!
//! Limits of the values (ranges, lengths, enums, the event's `type` and
//! `version`) are checked afterwards by the caller, over whole columns.
//! Nothing nests deeper than a list in an event in an envelope, so there is no
//! recursion; every index is bounds-checked, and a panic (a bug) is caught at
//! the boundary and reported as a failed batch, never unwound into Python.

use std::panic::{catch_unwind, AssertUnwindSafe};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `word` that is zero; exact up to the first
/// such byte (a borrow can only mark bytes above it), which is all `string` reads.
fn zero_byte(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// The high bit of each byte of `word` below `limit` (at most 128), exact up to the first.
fn below(word: u64, limit: u8) -> u64 {
    word.wrapping_sub(ONES * limit as u64) & !word & HIGHS
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    Integer,
    Str,
    List,
}

/// The request event's fields, and the envelope's header values.
pub struct Schema {
    names: Vec<Vec<u8>>,
    kinds: Vec<Kind>,
    type_field: usize,
    version_field: usize,
    batch_type: Vec<u8>,
    version: i64,
}

impl Schema {
    /// The field a key names; `guess` is tried first.
    fn find(&self, key: &[u8], guess: usize) -> Option<usize> {
        if guess < self.names.len() && self.names[guess] == key {
            return Some(guess);
        }
        self.names.iter().position(|name| name.as_slice() == key)
    }
}

/// One field's value in an object being read; strings are ranges of the text
/// (they hold no escape), a list is a range of `Reader::items`.
#[derive(Clone, Copy)]
enum Slot {
    Absent,
    Num(f64),
    Int(i64),
    Str(usize, usize),
    List(usize, usize),
}

/// One column, in Arrow's layout: a validity byte per row (packed into a
/// bitmap in Python), values or offsets, and string bytes.
struct Column {
    kind: Kind,
    valid: Vec<u8>,
    values: Vec<u8>, // f64 or i64 values (native endian), or int32 offsets
    data: Vec<u8>,   // string bytes
    items: Vec<u8>,  // int32 offsets of a list's strings into `data`
}

impl Column {
    fn new(kind: Kind) -> Column {
        let mut column = Column { kind, valid: Vec::new(), values: Vec::new(), data: Vec::new(), items: Vec::new() };
        if matches!(kind, Kind::Str | Kind::List) {
            column.values.extend_from_slice(&0i32.to_ne_bytes());
        }
        if kind == Kind::List {
            column.items.extend_from_slice(&0i32.to_ne_bytes());
        }
        column
    }

    fn reserve(&mut self, rows: usize) {
        self.valid.reserve(rows);
        self.values.reserve(rows * if matches!(self.kind, Kind::Number | Kind::Integer) { 8 } else { 4 });
    }

    fn push(&mut self, slot: Slot, text: &[u8], items: &[(usize, usize)]) {
        let present = !matches!(slot, Slot::Absent);
        self.valid.push(present as u8);
        match (self.kind, slot) {
            (Kind::Number, Slot::Num(x)) => self.values.extend_from_slice(&x.to_ne_bytes()),
            (Kind::Number, _) => self.values.extend_from_slice(&0f64.to_ne_bytes()),
            (Kind::Integer, Slot::Int(x)) => self.values.extend_from_slice(&x.to_ne_bytes()),
            (Kind::Integer, _) => self.values.extend_from_slice(&0i64.to_ne_bytes()),
            (Kind::Str, slot) => {
                if let Slot::Str(start, end) = slot {
                    self.data.extend_from_slice(&text[start..end]);
                }
                self.values.extend_from_slice(&(self.data.len() as i32).to_ne_bytes());
            }
            (Kind::List, slot) => {
                if let Slot::List(first, last) = slot {
                    for &(start, end) in &items[first..last] {
                        self.data.extend_from_slice(&text[start..end]);
                        self.items.extend_from_slice(&(self.data.len() as i32).to_ne_bytes());
                    }
                }
                let count = self.items.len() / 4 - 1;
                self.values.extend_from_slice(&(count as i32).to_ne_bytes());
            }
        }
    }

    fn offset(buffer: &[u8], index: usize) -> usize {
        let at = index * 4;
        i32::from_ne_bytes([buffer[at], buffer[at + 1], buffer[at + 2], buffer[at + 3]]) as usize
    }

    /// Back to `rows` rows: an envelope read in part is dropped whole.
    fn truncate(&mut self, rows: usize) {
        self.valid.truncate(rows);
        match self.kind {
            Kind::Number | Kind::Integer => self.values.truncate(rows * 8),
            Kind::Str => {
                self.values.truncate((rows + 1) * 4);
                self.data.truncate(Column::offset(&self.values, rows));
            }
            Kind::List => {
                self.values.truncate((rows + 1) * 4);
                let count = Column::offset(&self.values, rows);
                self.items.truncate((count + 1) * 4);
                self.data.truncate(Column::offset(&self.items, count));
            }
        }
    }
}

/// What a batch gave: per message its kind (0 unusual, 1 one event,
/// 2 envelope) and its number of events, and the events' columns in message
/// order.
pub struct Scanned {
    kinds: Vec<u8>,
    counts: Vec<i64>,
    columns: Vec<Column>,
    rows: usize,
}

enum Number {
    Int(i64),
    Float(f64),
}

/// Not in the subset: the message is left to the per-message decoders.
struct Unusual;

type Read<T> = Result<T, Unusual>;

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
    items: Vec<(usize, usize)>,
    /// The field that followed each field last time (the last slot: the first
    /// field of an object), tried first: producers write their keys in one order.
    follows: &'a mut [usize],
}

impl<'a> Reader<'a> {
    fn skip_space(&mut self) {
        while self.at < self.text.len() && matches!(self.text[self.at], b' ' | b'\t' | b'\n' | b'\r') {
            self.at += 1;
        }
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Read<u8> {
        self.skip_space();
        self.text.get(self.at).copied().ok_or(Unusual)
    }

    fn expect(&mut self, byte: u8) -> Read<()> {
        if self.peek()? != byte {
            return Err(Unusual);
        }
        self.at += 1;
        Ok(())
    }

    /// A string with no escape and no control character: its range, quotes
    /// excluded. Eight bytes at a time: the first quote, backslash or control
    /// byte ends the string (a quote) or the subset (the others).
    fn string(&mut self) -> Read<(usize, usize)> {
        self.expect(b'"')?;
        let start = self.at;
        while let Some(chunk) = self.text.get(self.at..self.at + 8) {
            let word = u64::from_le_bytes(chunk.try_into().map_err(|_| Unusual)?);
            let hits = zero_byte(word ^ (ONES * b'"' as u64)) | zero_byte(word ^ (ONES * b'\\' as u64)) | below(word, 0x20);
            if hits != 0 {
                self.at += (hits.trailing_zeros() / 8) as usize;
                break;
            }
            self.at += 8;
        }
        loop {
            match self.text.get(self.at) {
                Some(b'"') => break,
                Some(&byte) if byte >= 0x20 && byte != b'\\' => self.at += 1,
                _ => return Err(Unusual),
            }
        }
        let end = self.at;
        self.at += 1;
        Ok((start, end))
    }

    /// The key of the field `field` names, with its quotes, if it is next:
    /// keys mostly come in the order they came before, and this skips them
    /// with one comparison instead of a scan.
    fn known_key(&mut self, schema: &Schema, field: usize) -> bool {
        let name = match schema.names.get(field) {
            Some(name) => name,
            None => return false,
        };
        let end = self.at + name.len() + 2;
        match self.text.get(self.at..end) {
            Some(found) if found[0] == b'"' && found[name.len() + 1] == b'"' && &found[1..name.len() + 1] == name.as_slice() => {
                self.at = end;
                true
            }
            _ => false,
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.at;
        while self.at < self.text.len() && self.text[self.at].is_ascii_digit() {
            self.at += 1;
        }
        self.at - start
    }

    /// A number in JSON's grammar: an integer literal of at most 18 digits
    /// as its value (Python reads it as an int, exactly), or any other literal
    /// as its float (correctly rounded, as Python's); longer integer literals
    /// are left to the validator.
    fn number(&mut self) -> Read<Number> {
        self.skip_space();
        let start = self.at;
        let negative = self.text.get(self.at) == Some(&b'-');
        self.at += negative as usize;
        let first = self.at;
        let mut magnitude: i64 = 0;
        while let Some(&byte) = self.text.get(self.at) {
            if !byte.is_ascii_digit() {
                break;
            }
            magnitude = magnitude.wrapping_mul(10).wrapping_add((byte - b'0') as i64);
            self.at += 1;
        }
        let whole = self.at - first;
        if whole == 0 || (whole > 1 && self.text[first] == b'0') {
            return Err(Unusual); // no digit, or a leading zero
        }
        let mut integer = true;
        if self.text.get(self.at) == Some(&b'.') {
            self.at += 1;
            if self.digits() == 0 {
                return Err(Unusual);
            }
            integer = false;
        }
        if matches!(self.text.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.text.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            if self.digits() == 0 {
                return Err(Unusual);
            }
            integer = false;
        }
        if integer {
            // 18 digits never wrap an i64.
            return if whole <= 18 { Ok(Number::Int(if negative { -magnitude } else { magnitude })) } else { Err(Unusual) };
        }
        // SAFETY: the literal is ASCII: the grammar above read every byte of it.
        let literal = unsafe { std::str::from_utf8_unchecked(&self.text[start..self.at]) };
        literal.parse::<f64>().map(Number::Float).map_err(|_| Unusual)
    }

    fn null(&mut self) -> Read<()> {
        if self.text.get(self.at..self.at + 4) != Some(b"null".as_slice()) {
            return Err(Unusual);
        }
        self.at += 4;
        Ok(())
    }

    /// A field's value, by the field's kind.
    fn value(&mut self, kind: Kind) -> Read<Slot> {
        if self.peek()? == b'n' {
            self.null()?;
            return Ok(Slot::Absent);
        }
        match kind {
            Kind::Number => match self.number()? {
                // i64 -> f64 rounds to nearest, ties to even, as Python's float(int).
                Number::Int(x) => Ok(Slot::Num(x as f64)),
                Number::Float(x) => Ok(Slot::Num(x)),
            },
            Kind::Integer => match self.number()? {
                Number::Int(x) => Ok(Slot::Int(x)),
                Number::Float(_) => Err(Unusual), // 5.0: the validator decides
            },
            Kind::Str => {
                let (start, end) = self.string()?;
                Ok(Slot::Str(start, end))
            }
            Kind::List => {
                self.expect(b'[')?;
                let first = self.items.len();
                if self.peek()? == b']' {
                    self.at += 1;
                } else {
                    loop {
                        let item = self.string()?;
                        self.items.push(item);
                        match self.peek()? {
                            b',' => self.at += 1,
                            b']' => {
                                self.at += 1;
                                break;
                            }
                            _ => return Err(Unusual),
                        }
                    }
                }
                Ok(Slot::List(first, self.items.len()))
            }
        }
    }

    /// After a member: true when another follows, false at the object's end.
    fn more(&mut self) -> Read<bool> {
        match self.peek()? {
            b',' => {
                self.at += 1;
                Ok(true)
            }
            b'}' => {
                self.at += 1;
                Ok(false)
            }
            _ => Err(Unusual),
        }
    }

    /// An object of schema fields into `slots`; `on_events` reads the value of
    /// an `events` key (only an envelope may have one) and says it was there.
    fn object(
        &mut self,
        schema: &Schema,
        slots: &mut [Slot],
        mut on_events: impl FnMut(&mut Self) -> Read<()>,
    ) -> Read<u64> {
        slots.iter_mut().for_each(|slot| *slot = Slot::Absent);
        self.expect(b'{')?;
        let mut seen: u64 = 0;
        if self.peek()? == b'}' {
            self.at += 1;
            return Ok(seen);
        }
        let mut previous = schema.names.len();
        loop {
            self.skip_space();
            let guess = self.follows[previous];
            let field = if self.known_key(schema, guess) {
                Some(guess)
            } else {
                let (start, end) = self.string()?;
                let key = &self.text[start..end];
                if key == b"events" { None } else { Some(schema.find(key, guess).ok_or(Unusual)?) }
            };
            self.expect(b':')?;
            match field {
                Some(field) => {
                    if seen & (1 << field) != 0 {
                        return Err(Unusual); // a duplicate key
                    }
                    seen |= 1 << field;
                    self.follows[previous] = field;
                    previous = field;
                    slots[field] = self.value(schema.kinds[field])?;
                }
                None => {
                    if seen & (1 << 63) != 0 {
                        return Err(Unusual);
                    }
                    seen |= 1 << 63;
                    on_events(self)?;
                }
            }
            if !self.more()? {
                return Ok(seen);
            }
        }
    }
}

impl Scanned {
    fn push_row(&mut self, slots: &[Slot], text: &[u8], items: &[(usize, usize)]) {
        for (column, &slot) in self.columns.iter_mut().zip(slots) {
            column.push(slot, text, items);
        }
        self.rows += 1;
    }

    fn truncate(&mut self, rows: usize) {
        self.columns.iter_mut().for_each(|column| column.truncate(rows));
        self.rows = rows;
    }

    /// One message: (kind, events), its events pushed; on Unusual nothing is.
    fn message(&mut self, schema: &Schema, reader: &mut Reader, top: &mut [Slot], inner: &mut [Slot]) -> Read<(u8, i64)> {
        let mut count = 0i64;
        let seen = reader.object(schema, top, |reader| {
            reader.expect(b'[')?;
            if reader.peek()? == b']' {
                reader.at += 1;
                return Ok(());
            }
            loop {
                reader.items.clear();
                if reader.object(schema, inner, |_| Err(Unusual))? & (1 << 63) != 0 {
                    return Err(Unusual);
                }
                self.push_row(inner, reader.text, &reader.items);
                count += 1;
                match reader.peek()? {
                    b',' => reader.at += 1,
                    b']' => {
                        reader.at += 1;
                        return Ok(());
                    }
                    _ => return Err(Unusual),
                }
            }
        })?;
        reader.skip_space();
        if reader.at != reader.text.len() {
            return Err(Unusual); // something after the object
        }
        if seen & (1 << 63) == 0 {
            self.push_row(top, reader.text, &reader.items);
            return Ok((1, 1));
        }
        // An envelope: its header exactly, and nothing else beside its events.
        let header = (1u64 << schema.type_field) | (1u64 << schema.version_field) | (1 << 63);
        let batch = match top[schema.type_field] {
            Slot::Str(start, end) => reader.text[start..end] == schema.batch_type[..],
            _ => false,
        };
        let version = matches!(top[schema.version_field], Slot::Int(v) if v == schema.version);
        if seen != header || !batch || !version {
            return Err(Unusual);
        }
        Ok((2, count))
    }
}

fn scan(schema: &Schema, text: &[u8], starts: &[i64], sizes: &[i64], usual: &[u8]) -> Scanned {
    let n = starts.len();
    let mut out = Scanned {
        kinds: vec![0; n],
        counts: vec![0; n],
        columns: schema.kinds.iter().map(|&kind| Column::new(kind)).collect(),
        rows: 0,
    };
    // Rows: one per message at least, and one per ~256 bytes is about what an
    // envelope of ordinary events holds (an estimate: the columns grow past it).
    let estimate = n.max(text.len() / 256);
    out.columns.iter_mut().for_each(|column| column.reserve(estimate));
    let mut top = vec![Slot::Absent; schema.names.len()];
    let mut inner = vec![Slot::Absent; schema.names.len()];
    let mut follows = vec![0; schema.names.len() + 1];
    let mut items = Vec::new();
    for i in 0..n {
        let (start, size) = (starts[i], sizes[i]);
        if usual[i] == 0 || start < 0 || size < 0 || (start + size) as usize > text.len() {
            continue;
        }
        let message = &text[start as usize..(start + size) as usize];
        // Strings are the only tokens that may hold bytes past ASCII, and
        // each is whole inside the message: the message's UTF-8 is theirs.
        if !message.is_ascii() && std::str::from_utf8(message).is_err() {
            continue;
        }
        items.clear();
        let mut reader = Reader { text: message, at: 0, items: std::mem::take(&mut items), follows: &mut follows };
        let rows = out.rows;
        match out.message(schema, &mut reader, &mut top, &mut inner) {
            Ok((kind, count)) => {
                out.kinds[i] = kind;
                out.counts[i] = count;
            }
            Err(Unusual) => out.truncate(rows),
        }
        items = reader.items;
    }
    out
}

/// A schema: `names` the fields' wire names separated by line breaks, `kinds`
/// one byte per field (`n` number, `i` integer, `s` string, `l` list of
/// strings), `batch` the envelope's `type` and `version` its version. Null
/// when the description is not one this scanner can hold.
///
/// # Safety
/// Each pointer must point to its length of readable bytes.
#[no_mangle]
pub unsafe extern "C" fn fp_schema_new(
    names: *const u8,
    names_len: usize,
    kinds: *const u8,
    fields: usize,
    batch: *const u8,
    batch_len: usize,
    version: i64,
) -> *mut Schema {
    let names = std::slice::from_raw_parts(names, names_len);
    let kinds = std::slice::from_raw_parts(kinds, fields);
    let batch = std::slice::from_raw_parts(batch, batch_len);
    let names: Vec<Vec<u8>> = names.split(|&b| b == b'\n').map(|name| name.to_vec()).collect();
    let kinds: Option<Vec<Kind>> = kinds
        .iter()
        .map(|k| match k {
            b'n' => Some(Kind::Number),
            b'i' => Some(Kind::Integer),
            b's' => Some(Kind::Str),
            b'l' => Some(Kind::List),
            _ => None,
        })
        .collect();
    let position = |field: &[u8]| names.iter().position(|name| name.as_slice() == field);
    match (kinds, position(b"type"), position(b"version")) {
        (Some(kinds), Some(type_field), Some(version_field))
            if names.len() == fields && fields < 63 && kinds[type_field] == Kind::Str && kinds[version_field] == Kind::Integer =>
        {
            let batch_type = batch.to_vec();
            Box::into_raw(Box::new(Schema { names, kinds, type_field, version_field, batch_type, version }))
        }
        _ => std::ptr::null_mut(),
    }
}

/// Scans `n` messages, message `i` being `sizes[i]` bytes of `text` from
/// `starts[i]`, and only those whose `usual[i]` is not 0. Null if a bug
/// panicked (the caller then decodes the batch another way).
///
/// # Safety
/// `schema` must come from `fp_schema_new`; `text` must hold `text_len`
/// bytes, and `starts`, `sizes` and `usual` `n` values each.
#[no_mangle]
pub unsafe extern "C" fn fp_scan(
    schema: *const Schema,
    text: *const u8,
    text_len: usize,
    starts: *const i64,
    sizes: *const i64,
    usual: *const u8,
    n: usize,
) -> *mut Scanned {
    if schema.is_null() || text_len > i32::MAX as usize {
        return std::ptr::null_mut(); // offsets are Arrow's 32-bit ones
    }
    let schema = &*schema;
    let text = std::slice::from_raw_parts(text, text_len);
    let starts = std::slice::from_raw_parts(starts, n);
    let sizes = std::slice::from_raw_parts(sizes, n);
    let usual = std::slice::from_raw_parts(usual, n);
    match catch_unwind(AssertUnwindSafe(|| scan(schema, text, starts, sizes, usual))) {
        Ok(scanned) => Box::into_raw(Box::new(scanned)),
        Err(_) => std::ptr::null_mut(),
    }
}

/// Rows (events) of a scan.
///
/// # Safety
/// `scanned` must come from `fp_scan`.
#[no_mangle]
pub unsafe extern "C" fn fp_rows(scanned: *const Scanned) -> usize {
    (*scanned).rows
}

/// One buffer of a scan, and its length in bytes: 0 the kinds (u8 per
/// message), 1 the counts (i64 per message), then four per field from
/// 2 + 4 * field: validity (u8 per row), values or offsets, string bytes,
/// offsets of a list's strings.
///
/// # Safety
/// `scanned` must come from `fp_scan`; `len` must be writable.
#[no_mangle]
pub unsafe extern "C" fn fp_buffer(scanned: *const Scanned, index: usize, len: *mut usize) -> *const u8 {
    let scanned = &*scanned;
    let buffer: &[u8] = match index {
        0 => &scanned.kinds,
        1 => std::slice::from_raw_parts(scanned.counts.as_ptr() as *const u8, scanned.counts.len() * 8),
        _ => match scanned.columns.get((index - 2) / 4) {
            Some(column) => match (index - 2) % 4 {
                0 => &column.valid,
                1 => &column.values,
                2 => &column.data,
                _ => &column.items,
            },
            None => &[],
        },
    };
    *len = buffer.len();
    buffer.as_ptr()
}

/// Frees a scan.
///
/// # Safety
/// `scanned` must come from `fp_scan`, and not be used after.
#[no_mangle]
pub unsafe extern "C" fn fp_free(scanned: *mut Scanned) {
    if !scanned.is_null() {
        drop(Box::from_raw(scanned));
    }
}
