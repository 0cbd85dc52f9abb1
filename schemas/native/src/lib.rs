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

/// One column, in Arrow's layout: a validity byte per row (packed into a
/// bitmap in Python), and values, or offsets and string bytes.
struct Column {
    kind: Kind,
    valid: Vec<u8>,
    floats: Vec<f64>,
    ints: Vec<i64>,
    offsets: Vec<i32>, // a string's bytes in `data`, or a list's strings in `items`: rows + 1
    items: Vec<i32>,   // a list's strings' bytes in `data`
    data: Vec<u8>,
}

impl Column {
    fn new(kind: Kind, rows: usize) -> Column {
        let mut column = Column {
            kind,
            valid: Vec::with_capacity(rows),
            floats: Vec::new(),
            ints: Vec::new(),
            offsets: Vec::new(),
            items: Vec::new(),
            data: Vec::new(),
        };
        match kind {
            Kind::Number => column.floats.reserve(rows),
            Kind::Integer => column.ints.reserve(rows),
            Kind::Str | Kind::List => {
                column.offsets.reserve(rows + 1);
                column.offsets.push(0);
            }
        }
        if kind == Kind::List {
            column.items.push(0);
        }
        column
    }

    fn rows(&self) -> usize {
        self.valid.len()
    }

    fn push_null(&mut self) {
        self.valid.push(0);
        match self.kind {
            Kind::Number => self.floats.push(0.0),
            Kind::Integer => self.ints.push(0),
            Kind::Str => self.offsets.push(self.data.len() as i32),
            Kind::List => self.offsets.push(self.items.len() as i32 - 1),
        }
    }

    fn push_str(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        self.offsets.push(self.data.len() as i32);
        self.valid.push(1);
    }

    fn push_item(&mut self, bytes: &[u8]) {
        self.data.extend_from_slice(bytes);
        self.items.push(self.data.len() as i32);
    }

    fn end_list(&mut self) {
        self.offsets.push(self.items.len() as i32 - 1);
        self.valid.push(1);
    }

    /// Whether the last row holds this string.
    fn last_is(&self, bytes: &[u8]) -> bool {
        let rows = self.rows();
        rows > 0
            && self.valid[rows - 1] == 1
            && &self.data[self.offsets[rows - 1] as usize..self.offsets[rows] as usize] == bytes
    }

    /// Back to `rows` rows: a message read in part is dropped whole (a
    /// list's strings too, pushed before its row).
    fn truncate(&mut self, rows: usize) {
        self.valid.truncate(rows);
        self.floats.truncate(rows);
        self.ints.truncate(rows);
        match self.kind {
            Kind::Number | Kind::Integer => {}
            Kind::Str => {
                self.offsets.truncate(rows + 1);
                self.data.truncate(self.offsets[rows] as usize);
            }
            Kind::List => {
                self.offsets.truncate(rows + 1);
                let items = self.offsets[rows] as usize;
                self.items.truncate(items + 1);
                self.data.truncate(self.items[items] as usize);
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

/// Where the members of an object stopped: at its end, or at an `events` key.
enum Stop {
    End,
    Events,
}

/// Not in the subset: the message is left to the per-message decoders.
struct Unusual;

type Read<T> = Result<T, Unusual>;

/// Powers of ten a double holds exactly.
const EXACT_TENS: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
    1e20, 1e21, 1e22,
];

struct Reader<'a> {
    text: &'a [u8],
    at: usize,
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

    /// Whether the key of field `field`, with its quotes, is next (then it is
    /// skipped): keys mostly come in the order they came before, and this
    /// skips them with one comparison instead of a scan.
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

    /// Digits from here: their count, and their value (wrapping past 19 digits).
    fn digits(&mut self, mut value: u64) -> (usize, u64) {
        let start = self.at;
        while let Some(&byte) = self.text.get(self.at) {
            if !byte.is_ascii_digit() {
                break;
            }
            value = value.wrapping_mul(10).wrapping_add((byte - b'0') as u64);
            self.at += 1;
        }
        (self.at - start, value)
    }

    /// A number in JSON's grammar: an integer literal of at most 18 digits
    /// as its value (Python reads it as an int, exactly), or any other literal
    /// as its float, correctly rounded as Python's; longer integer literals
    /// are left to the validator.
    fn number(&mut self) -> Read<Number> {
        self.skip_space();
        let start = self.at;
        let negative = self.text.get(self.at) == Some(&b'-');
        self.at += negative as usize;
        let first = self.at;
        let (whole, mut mantissa) = self.digits(0);
        if whole == 0 || (whole > 1 && self.text[first] == b'0') {
            return Err(Unusual); // no digit, or a leading zero
        }
        let (mut fraction, mut exponent, mut integer) = (0, 0i64, true);
        if self.text.get(self.at) == Some(&b'.') {
            self.at += 1;
            (fraction, mantissa) = self.digits(mantissa);
            if fraction == 0 {
                return Err(Unusual);
            }
            integer = false;
        }
        if matches!(self.text.get(self.at), Some(b'e' | b'E')) {
            self.at += 1;
            let minus = self.text.get(self.at) == Some(&b'-');
            if matches!(self.text.get(self.at), Some(b'+' | b'-')) {
                self.at += 1;
            }
            let (count, value) = self.digits(0);
            if count == 0 {
                return Err(Unusual);
            }
            exponent = if count > 4 { 99_999 } else { value as i64 };
            exponent = if minus { -exponent } else { exponent };
            integer = false;
        }
        if integer {
            // 18 digits never wrap an i64.
            let value = mantissa as i64;
            return if whole <= 18 { Ok(Number::Int(if negative { -value } else { value })) } else { Err(Unusual) };
        }
        // Clinger's fast path: an exact mantissa times or over an exact power
        // of ten is one correctly rounded operation.
        let scale = exponent - fraction as i64;
        if whole + fraction <= 19 && mantissa <= 1 << 53 && (-22..=22).contains(&scale) {
            let magnitude = mantissa as f64;
            let value = if scale < 0 { magnitude / EXACT_TENS[(-scale) as usize] } else { magnitude * EXACT_TENS[scale as usize] };
            return Ok(Number::Float(if negative { -value } else { value }));
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

    /// A field's value, by the column's kind, pushed as the column's next row.
    fn value_into(&mut self, column: &mut Column) -> Read<()> {
        if self.peek()? == b'n' {
            self.null()?;
            column.push_null();
            return Ok(());
        }
        match column.kind {
            Kind::Number => {
                // i64 -> f64 rounds to nearest, ties to even, as Python's float(int).
                let value = match self.number()? {
                    Number::Int(x) => x as f64,
                    Number::Float(x) => x,
                };
                column.floats.push(value);
                column.valid.push(1);
            }
            Kind::Integer => match self.number()? {
                Number::Int(x) => {
                    column.ints.push(x);
                    column.valid.push(1);
                }
                Number::Float(_) => return Err(Unusual), // 5.0: the validator decides
            },
            Kind::Str => {
                let (start, end) = self.string()?;
                column.push_str(&self.text[start..end]);
            }
            Kind::List => {
                self.expect(b'[')?;
                if self.peek()? == b']' {
                    self.at += 1;
                } else {
                    loop {
                        let (start, end) = self.string()?;
                        column.push_item(&self.text[start..end]);
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
                column.end_list();
            }
        }
        Ok(())
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

    /// An object's members from here (after its `{`), each field's value
    /// pushed to its column, `seen` marking them; an `events` key stops it
    /// when `events` allows one (its `:` read), and is Unusual otherwise.
    fn members(&mut self, schema: &Schema, columns: &mut [Column], seen: &mut u64, events: bool) -> Read<Stop> {
        if self.peek()? == b'}' {
            self.at += 1;
            return Ok(Stop::End);
        }
        let mut previous = schema.names.len();
        loop {
            self.skip_space();
            let guess = self.follows[previous];
            let field = if self.known_key(schema, guess) {
                guess
            } else {
                let (start, end) = self.string()?;
                let key = &self.text[start..end];
                if key == b"events" && events {
                    self.expect(b':')?;
                    return Ok(Stop::Events);
                }
                schema.find(key, guess).ok_or(Unusual)?
            };
            self.expect(b':')?;
            if *seen & (1 << field) != 0 {
                return Err(Unusual); // a duplicate key
            }
            *seen |= 1 << field;
            self.follows[previous] = field;
            previous = field;
            self.value_into(&mut columns[field])?;
            if !self.more()? {
                return Ok(Stop::End);
            }
        }
    }

    /// An envelope's list of events, each a row; their number.
    fn events(&mut self, schema: &Schema, columns: &mut [Column]) -> Read<i64> {
        self.expect(b'[')?;
        if self.peek()? == b']' {
            self.at += 1;
            return Ok(0);
        }
        let mut count = 0;
        loop {
            self.expect(b'{')?;
            let mut seen = 0;
            self.members(schema, columns, &mut seen, false)?;
            absent_as_null(columns, seen);
            count += 1;
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Ok(count);
                }
                _ => return Err(Unusual),
            }
        }
    }

    /// The rest of an envelope after its events: `type` or `version` (not
    /// seen before), each checked; whether they hold the envelope's values.
    fn header_after_events(&mut self, schema: &Schema, seen: &mut u64) -> Read<bool> {
        let mut right = true;
        while self.more()? {
            let (start, end) = self.string()?;
            let field = schema.find(&self.text[start..end], 0).ok_or(Unusual)?;
            self.expect(b':')?;
            if *seen & (1 << field) != 0 {
                return Err(Unusual);
            }
            *seen |= 1 << field;
            if field == schema.type_field {
                let (start, end) = self.string()?;
                right &= self.text[start..end] == schema.batch_type[..];
            } else if field == schema.version_field {
                right &= matches!(self.number()?, Number::Int(v) if v == schema.version);
            } else {
                return Err(Unusual); // an envelope holds nothing but its header and events
            }
        }
        Ok(right)
    }

    /// Nothing but whitespace after the object.
    fn end(&mut self) -> Read<()> {
        self.skip_space();
        if self.at == self.text.len() { Ok(()) } else { Err(Unusual) }
    }
}

/// A null in every column an object did not name, so all hold its row.
fn absent_as_null(columns: &mut [Column], seen: u64) {
    for (field, column) in columns.iter_mut().enumerate() {
        if seen & (1 << field) == 0 {
            column.push_null();
        }
    }
}

impl Scanned {
    /// One message: (kind, events), its events pushed as rows; on Unusual the
    /// caller takes back whatever it pushed.
    fn message(&mut self, schema: &Schema, reader: &mut Reader) -> Read<(u8, i64)> {
        let row = self.rows;
        reader.expect(b'{')?;
        let mut seen = 0u64;
        if let Stop::End = reader.members(schema, &mut self.columns, &mut seen, true)? {
            reader.end()?;
            absent_as_null(&mut self.columns, seen);
            self.rows += 1;
            return Ok((1, 1));
        }
        // An envelope: before its events, only its header was read into row
        // `row` (its values are checked, then taken back out of the columns).
        let header = (1u64 << schema.type_field) | (1u64 << schema.version_field);
        if seen & !header != 0 {
            return Err(Unusual);
        }
        let (kind, version) = (&self.columns[schema.type_field], &self.columns[schema.version_field]);
        let mut right = (seen & (1 << schema.type_field) == 0 || kind.last_is(&schema.batch_type))
            && (seen & (1 << schema.version_field) == 0
                || (version.valid[row] == 1 && version.ints[row] == schema.version));
        self.columns[schema.type_field].truncate(row);
        self.columns[schema.version_field].truncate(row);
        let count = reader.events(schema, &mut self.columns)?;
        right &= reader.header_after_events(schema, &mut seen)?;
        reader.end()?;
        if !right || seen != header {
            return Err(Unusual);
        }
        self.rows += count as usize;
        Ok((2, count))
    }

    fn truncate(&mut self, rows: usize) {
        self.columns.iter_mut().for_each(|column| column.truncate(rows));
        self.rows = rows;
    }
}

fn scan(schema: &Schema, text: &[u8], starts: &[i64], sizes: &[i64], usual: &[u8]) -> Scanned {
    let n = starts.len();
    // Rows: one per message at least, and one per ~256 bytes is about what an
    // envelope of ordinary events holds (an estimate: the columns grow past it).
    let estimate = n.max(text.len() / 256);
    let mut out = Scanned {
        kinds: vec![0; n],
        counts: vec![0; n],
        columns: schema.kinds.iter().map(|&kind| Column::new(kind, estimate)).collect(),
        rows: 0,
    };
    let mut follows = vec![0; schema.names.len() + 1];
    for i in 0..n {
        let (start, size) = (starts[i], sizes[i]);
        let end = match start.checked_add(size) {
            Some(end) if usual[i] != 0 && start >= 0 && size >= 0 && end as usize <= text.len() => end as usize,
            _ => continue,
        };
        let message = &text[start as usize..end];
        // Strings are the only tokens that may hold bytes past ASCII, and
        // each is whole inside the message: the message's UTF-8 is theirs.
        if !message.is_ascii() && std::str::from_utf8(message).is_err() {
            continue;
        }
        let mut reader = Reader { text: message, at: 0, follows: &mut follows };
        let rows = out.rows;
        match out.message(schema, &mut reader) {
            Ok((kind, count)) => {
                out.kinds[i] = kind;
                out.counts[i] = count;
            }
            Err(Unusual) => out.truncate(rows),
        }
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
    fn bytes<T>(values: &[T]) -> &[u8] {
        // SAFETY: plain numbers (u8, i32, i64, f64) seen as their bytes, for as long as the scan lives.
        unsafe { std::slice::from_raw_parts(values.as_ptr() as *const u8, std::mem::size_of_val(values)) }
    }
    let buffer: &[u8] = match index {
        0 => &scanned.kinds,
        1 => bytes(&scanned.counts),
        _ => match scanned.columns.get((index - 2) / 4) {
            Some(column) => match ((index - 2) % 4, column.kind) {
                (0, _) => &column.valid,
                (1, Kind::Number) => bytes(&column.floats),
                (1, Kind::Integer) => bytes(&column.ints),
                (1, _) => bytes(&column.offsets),
                (2, _) => &column.data,
                _ => bytes(&column.items),
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
