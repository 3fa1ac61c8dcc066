//! MySQL binary JSON: decoding to JSON text as MySQL prints it, and applying partial-update
//! diffs (PARTIAL_UPDATE_ROWS) to a before-image. All reads are bounds-checked and the nesting
//! depth is capped, so malformed input gives an error, never a panic or unbounded recursion.

use std::fmt::Write as _;

use crate::binlog::rows::{decode_decimal, le, Cursor};
use crate::error::{Error, Result};

/// MySQL's own limit on JSON nesting is 100; allow a little more, never unbounded.
const MAX_DEPTH: usize = 150;

/// A JSON document. Numbers keep their text; object members keep their order.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

fn bad(what: &str) -> Error {
    Error::corruption(format!("malformed binary JSON: {what}"))
}

/// Decodes a binary JSON value to MySQL's text form.
pub(crate) fn to_text(bytes: &[u8]) -> Result<String> {
    let doc = parse_binary(bytes)?;
    let mut out = String::with_capacity(bytes.len() + 16);
    render(&doc, &mut out);
    Ok(out)
}

/// Parses a binary JSON value (type byte + data). Empty input is JSON null, as in MySQL.
pub(crate) fn parse_binary(bytes: &[u8]) -> Result<Json> {
    let Some((&ty, data)) = bytes.split_first() else {
        return Ok(Json::Null);
    };
    value(ty, data, 0, 0)
}

fn slice(data: &[u8], from: usize, len: usize) -> Result<&[u8]> {
    from.checked_add(len)
        .and_then(|end| data.get(from..end))
        .ok_or_else(|| bad("offset out of bounds"))
}

fn var_len(data: &[u8], at: usize) -> Result<(usize, usize)> {
    // Up to 5 bytes of 7 bits each, low bits first.
    let mut len = 0usize;
    for i in 0..5 {
        let b = *data
            .get(at + i)
            .ok_or_else(|| bad("length out of bounds"))?;
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((len, i + 1));
        }
    }
    Err(bad("length too long"))
}

/// Decodes the value of type `ty` whose data starts at `at` in `data`.
fn value(ty: u8, data: &[u8], at: usize, depth: usize) -> Result<Json> {
    if depth > MAX_DEPTH {
        return Err(bad("nesting too deep"));
    }
    let body = data.get(at..).ok_or_else(|| bad("offset out of bounds"))?;
    Ok(match ty {
        0x00 => container(body, false, false, depth)?,
        0x01 => container(body, true, false, depth)?,
        0x02 => container(body, false, true, depth)?,
        0x03 => container(body, true, true, depth)?,
        0x04 => match body.first() {
            Some(0) => Json::Null,
            Some(1) => Json::Bool(true),
            Some(2) => Json::Bool(false),
            _ => return Err(bad("unknown literal")),
        },
        0x05 => Json::Number((le(slice(body, 0, 2)?) as u16 as i16).to_string()),
        0x06 => Json::Number((le(slice(body, 0, 2)?) as u16).to_string()),
        0x07 => Json::Number((le(slice(body, 0, 4)?) as u32 as i32).to_string()),
        0x08 => Json::Number((le(slice(body, 0, 4)?) as u32).to_string()),
        0x09 => Json::Number((le(slice(body, 0, 8)?) as i64).to_string()),
        0x0a => Json::Number(le(slice(body, 0, 8)?).to_string()),
        0x0b => Json::Number(double_text(f64::from_bits(le(slice(body, 0, 8)?)))),
        0x0c => {
            let (len, n) = var_len(body, 0)?;
            let s = slice(body, n, len)?;
            Json::String(
                std::str::from_utf8(s)
                    .map_err(|_| bad("string is not UTF-8"))?
                    .to_owned(),
            )
        }
        0x0f => {
            let field_type = *body.first().ok_or_else(|| bad("opaque without type"))?;
            let (len, n) = var_len(body, 1)?;
            opaque(field_type, slice(body, 1 + n, len)?)?
        }
        _ => return Err(bad("unknown value type")),
    })
}

/// MySQL prints doubles in their shortest round-trip form, with `.0` on integral values.
pub(crate) fn double_text(d: f64) -> String {
    if !d.is_finite() {
        return "0".into();
    }
    format!("{d:?}")
}

fn opaque(field_type: u8, data: &[u8]) -> Result<Json> {
    let packed = || -> Result<i64> { Ok(le(slice(data, 0, 8)?) as i64) };
    Ok(match field_type {
        // NEWDECIMAL: precision, scale, then the binary decimal.
        246 => {
            let (&p, rest) = data.split_first().ok_or_else(|| bad("short decimal"))?;
            let (&s, rest) = rest.split_first().ok_or_else(|| bad("short decimal"))?;
            if p == 0 || p > 65 || s > p {
                return Err(bad("decimal precision"));
            }
            let size = crate::binlog::rows::decimal_size(p, s);
            Json::Number(decode_decimal(slice(rest, 0, size)?, p, s)?)
        }
        // DATE
        10 | 14 => {
            let (y, m, d, ..) = datetime_parts(packed()?);
            Json::String(format!("{y:04}-{m:02}-{d:02}"))
        }
        // TIME
        11 | 19 => {
            let v = packed()?;
            let neg = if v < 0 { "-" } else { "" };
            let t = v.unsigned_abs();
            let hms = t >> 24;
            let us = t % (1 << 24);
            Json::String(format!(
                "{neg}{:02}:{:02}:{:02}.{us:06}",
                (hms >> 12) % (1 << 10),
                (hms >> 6) % 64,
                hms % 64
            ))
        }
        // DATETIME, TIMESTAMP
        7 | 12 | 17 | 18 => {
            let (y, mo, d, h, mi, s, us) = datetime_parts(packed()?);
            Json::String(format!(
                "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
            ))
        }
        _ => {
            use base64::Engine as _;
            Json::String(format!(
                "base64:type{field_type}:{}",
                base64::engine::general_purpose::STANDARD.encode(data)
            ))
        }
    })
}

fn datetime_parts(v: i64) -> (u64, u64, u64, u64, u64, u64, u64) {
    let t = v.unsigned_abs();
    let us = t % (1 << 24);
    let intpart = t >> 24;
    let ymd = intpart >> 17;
    let ym = ymd >> 5;
    let hms = intpart % (1 << 17);
    (
        ym / 13,
        ym % 13,
        ymd % 32,
        hms >> 12,
        (hms >> 6) % 64,
        hms % 64,
        us,
    )
}

fn container(body: &[u8], large: bool, array: bool, depth: usize) -> Result<Json> {
    let osz = if large { 4 } else { 2 };
    let count = usize::try_from(le(slice(body, 0, osz)?)).map_err(|_| bad("count"))?;
    let size = usize::try_from(le(slice(body, osz, osz)?)).map_err(|_| bad("size"))?;
    let body = body
        .get(..size)
        .ok_or_else(|| bad("container larger than its value"))?;
    let key_entry = osz + 2;
    let value_entry = 1 + osz;
    let header = 2 * osz;
    let min = header
        .checked_add(
            count
                .checked_mul(value_entry + if array { 0 } else { key_entry })
                .ok_or_else(|| bad("count"))?,
        )
        .ok_or_else(|| bad("count"))?;
    if min > body.len() {
        return Err(bad("element count larger than the container"));
    }
    let read_value = |i: usize| -> Result<Json> {
        let keys = if array { 0 } else { count * key_entry };
        let entry = header + keys + i * value_entry;
        let ty = *body.get(entry).ok_or_else(|| bad("value entry"))?;
        let inline = matches!(ty, 0x04..=0x06) || (large && matches!(ty, 0x07 | 0x08));
        if inline {
            value(ty, body, entry + 1, depth + 1)
        } else {
            let off =
                usize::try_from(le(slice(body, entry + 1, osz)?)).map_err(|_| bad("offset"))?;
            if off >= body.len() {
                return Err(bad("value offset out of bounds"));
            }
            value(ty, body, off, depth + 1)
        }
    };
    if array {
        let mut items = Vec::with_capacity(count.min(4096));
        for i in 0..count {
            items.push(read_value(i)?);
        }
        Ok(Json::Array(items))
    } else {
        let mut members = Vec::with_capacity(count.min(4096));
        for i in 0..count {
            let entry = header + i * key_entry;
            let off =
                usize::try_from(le(slice(body, entry, osz)?)).map_err(|_| bad("key offset"))?;
            let len =
                usize::try_from(le(slice(body, entry + osz, 2)?)).map_err(|_| bad("key length"))?;
            let key =
                std::str::from_utf8(slice(body, off, len)?).map_err(|_| bad("key is not UTF-8"))?;
            members.push((key.to_owned(), read_value(i)?));
        }
        Ok(Json::Object(members))
    }
}

/// Renders `doc` the way MySQL prints JSON: `{"a": 1, "b": [1, 2]}`.
pub(crate) fn render(doc: &Json, out: &mut String) {
    match doc {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(n),
        Json::String(s) => quote(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                render(v, out);
            }
            out.push(']');
        }
        Json::Object(members) => {
            out.push('{');
            for (i, (k, v)) in members.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote(k, out);
                out.push_str(": ");
                render(v, out);
            }
            out.push('}');
        }
    }
}

fn quote(s: &str, out: &mut String) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// JSON text parsing (of our own rendering of the before-image) and partial-update diffs.

struct TextParser<'a> {
    s: &'a [u8],
    pos: usize,
}

impl TextParser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.pos), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }

    fn expect(&mut self, b: u8) -> Result<()> {
        self.ws();
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(bad("JSON text: unexpected character"))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json> {
        if depth > MAX_DEPTH {
            return Err(bad("JSON text nesting too deep"));
        }
        self.ws();
        match self.peek() {
            Some(b'{') => {
                self.pos += 1;
                let mut members = Vec::new();
                self.ws();
                if self.peek() == Some(b'}') {
                    self.pos += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.expect(b':')?;
                    let v = self.value(depth + 1)?;
                    members.push((k, v));
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(bad("JSON text: bad object")),
                    }
                }
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.ws();
                if self.peek() == Some(b']') {
                    self.pos += 1;
                    return Ok(Json::Array(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.peek() {
                        Some(b',') => self.pos += 1,
                        Some(b']') => {
                            self.pos += 1;
                            return Ok(Json::Array(items));
                        }
                        _ => return Err(bad("JSON text: bad array")),
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.pos;
                while matches!(
                    self.peek(),
                    Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                ) {
                    self.pos += 1;
                }
                let text = std::str::from_utf8(self.s.get(start..self.pos).unwrap_or_default())
                    .map_err(|_| bad("JSON text: number"))?;
                Ok(Json::Number(text.to_owned()))
            }
            _ => Err(bad("JSON text: unexpected character")),
        }
    }

    fn literal(&mut self, word: &str, v: Json) -> Result<Json> {
        if self.s.get(self.pos..self.pos + word.len()) == Some(word.as_bytes()) {
            self.pos += word.len();
            Ok(v)
        } else {
            Err(bad("JSON text: bad literal"))
        }
    }

    fn string(&mut self) -> Result<String> {
        if self.peek() != Some(b'"') {
            return Err(bad("JSON text: expected a string"));
        }
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            let b = self
                .peek()
                .ok_or_else(|| bad("JSON text: unterminated string"))?;
            self.pos += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().ok_or_else(|| bad("JSON text: bad escape"))?;
                    self.pos += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xd800..0xdc00).contains(&cp)
                                && self.s.get(self.pos..self.pos + 2) == Some(b"\\u")
                            {
                                self.pos += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000
                                    + ((cp - 0xd800) << 10)
                                    + (lo.wrapping_sub(0xdc00) & 0x3ff);
                            }
                            let c = char::from_u32(cp)
                                .ok_or_else(|| bad("JSON text: bad \\u escape"))?;
                            let mut b = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
                        }
                        _ => return Err(bad("JSON text: bad escape")),
                    }
                }
                b => out.push(b),
            }
        }
        String::from_utf8(out).map_err(|_| bad("JSON text: not UTF-8"))
    }

    fn hex4(&mut self) -> Result<u32> {
        let h = self
            .s
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| bad("JSON text: bad \\u escape"))?;
        self.pos += 4;
        let h = std::str::from_utf8(h).map_err(|_| bad("JSON text: bad \\u escape"))?;
        u32::from_str_radix(h, 16).map_err(|_| bad("JSON text: bad \\u escape"))
    }
}

/// Parses JSON text (as produced by [`render`]).
pub(crate) fn parse_text(s: &str) -> Result<Json> {
    let mut p = TextParser {
        s: s.as_bytes(),
        pos: 0,
    };
    let v = p.value(0)?;
    p.ws();
    if p.pos != p.s.len() {
        return Err(bad("JSON text: trailing characters"));
    }
    Ok(v)
}

#[derive(Debug, PartialEq)]
enum Leg {
    Member(String),
    Index(usize),
}

fn parse_path(path: &[u8]) -> Result<Vec<Leg>> {
    let s = std::str::from_utf8(path).map_err(|_| bad("JSON path is not UTF-8"))?;
    let mut p = TextParser {
        s: s.as_bytes(),
        pos: 0,
    };
    p.ws();
    if p.peek() != Some(b'$') {
        return Err(bad("JSON path must start with $"));
    }
    p.pos += 1;
    let mut legs = Vec::new();
    loop {
        p.ws();
        match p.peek() {
            None => return Ok(legs),
            Some(b'.') => {
                p.pos += 1;
                p.ws();
                if p.peek() == Some(b'"') {
                    legs.push(Leg::Member(p.string()?));
                } else {
                    let start = p.pos;
                    while p.peek().is_some_and(|b| !matches!(b, b'.' | b'[' | b' ')) {
                        p.pos += 1;
                    }
                    let name = s.get(start..p.pos).ok_or_else(|| bad("JSON path member"))?;
                    if name.is_empty() {
                        return Err(bad("JSON path: empty member"));
                    }
                    legs.push(Leg::Member(name.to_owned()));
                }
            }
            Some(b'[') => {
                p.pos += 1;
                p.ws();
                let start = p.pos;
                while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                    p.pos += 1;
                }
                let idx = s
                    .get(start..p.pos)
                    .and_then(|d| d.parse::<usize>().ok())
                    .ok_or_else(|| bad("JSON path: bad array index"))?;
                p.expect(b']')?;
                legs.push(Leg::Index(idx));
            }
            Some(_) => return Err(bad("JSON path: unexpected character")),
        }
    }
}

/// MySQL orders object members by key length, then by bytes.
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.len()
        .cmp(&b.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

fn navigate<'a>(doc: &'a mut Json, legs: &[Leg]) -> Result<&'a mut Json> {
    let mut cur = doc;
    for leg in legs {
        cur = match (cur, leg) {
            (Json::Object(m), Leg::Member(k)) => m
                .iter_mut()
                .find(|(mk, _)| mk == k)
                .map(|(_, v)| v)
                .ok_or_else(|| bad("JSON diff path does not exist"))?,
            (Json::Array(a), Leg::Index(i)) => a
                .get_mut(*i)
                .ok_or_else(|| bad("JSON diff path does not exist"))?,
            _ => return Err(bad("JSON diff path does not match the document")),
        };
    }
    Ok(cur)
}

/// Applies one diff operation to `doc`.
fn apply_one(doc: &mut Json, op: u8, path: &[u8], value: Option<Json>) -> Result<()> {
    let legs = parse_path(path)?;
    let Some((last, parent_legs)) = legs.split_last() else {
        // The whole document.
        return match (op, value) {
            (0, Some(v)) => {
                *doc = v;
                Ok(())
            }
            _ => Err(bad("JSON diff on the root must be a replace")),
        };
    };
    let parent = navigate(doc, parent_legs)?;
    match (op, parent, last) {
        (0, p, _) => {
            let v = value.ok_or_else(|| bad("JSON diff replace without a value"))?;
            *navigate(p, std::slice::from_ref(last))? = v;
        }
        (1, Json::Object(m), Leg::Member(k)) => {
            let v = value.ok_or_else(|| bad("JSON diff insert without a value"))?;
            if m.iter().any(|(mk, _)| mk == k) {
                return Err(bad("JSON diff inserts an existing member"));
            }
            let at = m.partition_point(|(mk, _)| key_order(mk, k).is_lt());
            m.insert(at, (k.clone(), v));
        }
        (1, Json::Array(a), Leg::Index(i)) => {
            let v = value.ok_or_else(|| bad("JSON diff insert without a value"))?;
            let at = (*i).min(a.len());
            a.insert(at, v);
        }
        (2, Json::Object(m), Leg::Member(k)) => {
            let before = m.len();
            m.retain(|(mk, _)| mk != k);
            if m.len() == before {
                return Err(bad("JSON diff removes a missing member"));
            }
        }
        (2, Json::Array(a), Leg::Index(i)) => {
            if *i >= a.len() {
                return Err(bad("JSON diff removes a missing element"));
            }
            a.remove(*i);
        }
        _ => return Err(bad("JSON diff operation does not match the document")),
    }
    Ok(())
}

/// Applies a serialized list of JSON diffs (operation, path, value) to the JSON text `base`.
pub(crate) fn apply_diff(base: &str, diffs: &[u8]) -> Result<String> {
    let mut doc = parse_text(base)?;
    let mut c = Cursor::new(diffs);
    while !c.is_empty() {
        let op = c.u8()?;
        if op > 2 {
            return Err(bad("unknown JSON diff operation"));
        }
        let path_len = usize::try_from(c.lenenc()?).map_err(|_| bad("path length"))?;
        let path = c.take(path_len)?;
        let value = if op == 2 {
            None
        } else {
            let len = usize::try_from(c.lenenc()?).map_err(|_| bad("value length"))?;
            Some(parse_binary(c.take(len)?)?)
        };
        apply_one(&mut doc, op, path, value)?;
    }
    let mut out = String::with_capacity(base.len() + 16);
    render(&doc, &mut out);
    Ok(out)
}

/// Renders a serialized list of JSON diffs as a JSON array of
/// `{"op": "REPLACE"|"INSERT"|"REMOVE", "path": ..., "value": ...}` (for partial updates whose
/// before-image does not carry the document).
pub(crate) fn diff_to_text(diffs: &[u8]) -> Result<String> {
    let mut c = Cursor::new(diffs);
    let mut out = String::from("[");
    while !c.is_empty() {
        let op = c.u8()?;
        let name = match op {
            0 => "REPLACE",
            1 => "INSERT",
            2 => "REMOVE",
            _ => return Err(bad("unknown JSON diff operation")),
        };
        let path_len = usize::try_from(c.lenenc()?).map_err(|_| bad("path length"))?;
        let path = std::str::from_utf8(c.take(path_len)?).map_err(|_| bad("path is not UTF-8"))?;
        if out.len() > 1 {
            out.push_str(", ");
        }
        out.push_str("{\"op\": \"");
        out.push_str(name);
        out.push_str("\", \"path\": ");
        quote(path, &mut out);
        if op != 2 {
            let len = usize::try_from(c.lenenc()?).map_err(|_| bad("value length"))?;
            out.push_str(", \"value\": ");
            render(&parse_binary(c.take(len)?)?, &mut out);
        }
        out.push('}');
    }
    out.push(']');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_object() {
        // {"a": 1} : small object, 1 element, size, key entry (offset, len), value entry (int16 inline).
        let mut b = vec![0x00u8];
        let body: Vec<u8> = vec![1, 0, 12, 0, 11, 0, 1, 0, 0x05, 1, 0, b'a'];
        b.extend_from_slice(&body);
        assert_eq!(to_text(&b).unwrap(), r#"{"a": 1}"#);
    }

    #[test]
    fn malformed_never_panics() {
        for input in [
            &[0x00u8, 0xff, 0xff, 0xff, 0xff][..],
            &[0x03, 1],
            &[0x0c, 0x85],
            &[0x0f],
        ] {
            assert!(to_text(input).is_err());
        }
        // Deep nesting is refused, not recursed without bound.
        let mut deep = String::new();
        for _ in 0..1000 {
            deep.push('[');
        }
        assert!(parse_text(&deep).is_err());
    }

    #[test]
    fn diffs() {
        let mut doc = parse_text(r#"{"a": 1, "bb": [1, 2, 3]}"#).unwrap();
        apply_one(&mut doc, 0, b"$.a", Some(Json::Number("5".into()))).unwrap();
        apply_one(&mut doc, 1, b"$.c", Some(Json::String("x".into()))).unwrap();
        apply_one(&mut doc, 2, b"$.bb[1]", None).unwrap();
        apply_one(&mut doc, 1, b"$.bb[0]", Some(Json::Null)).unwrap();
        let mut out = String::new();
        render(&doc, &mut out);
        assert_eq!(out, r#"{"a": 5, "c": "x", "bb": [null, 1, 3]}"#);
        assert!(apply_one(&mut doc, 0, b"$.zz", Some(Json::Null)).is_err());
    }
}
