//! Row images: column bytes to exact [`Value`]s. Every read is bounds-checked; nothing here
//! trusts a length from the input without checking it against the bytes that are there.

use crate::binlog::jsonb;
use crate::binlog::table_map::{ColumnDecoder, TableSchema};
use crate::error::{Error, Result};
use crate::record::{Decimal, Value};

/// A bounds-checked reader over a byte slice.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    /// Takes `n` bytes as a slice of `src`, the buffer this cursor reads (no copy).
    pub(crate) fn take_shared(&mut self, n: usize, src: &bytes::Bytes) -> Result<bytes::Bytes> {
        let start = self.pos;
        self.take(n)?;
        if src.len() != self.buf.len() {
            return Err(Error::new(
                crate::error::ErrorKind::Internal,
                "cursor and buffer differ",
            ));
        }
        Ok(src.slice(start..self.pos))
    }

    pub(crate) fn offset(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                Error::corruption(format!(
                    "row data ends early: need {n} bytes at {}, have {}",
                    self.pos,
                    self.buf.len().saturating_sub(self.pos)
                ))
            })?;
        let s = self.buf.get(self.pos..end).unwrap_or_default();
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?.first().copied().unwrap_or(0))
    }

    /// Little-endian unsigned integer of `n` (<= 8) bytes.
    pub(crate) fn uint_le(&mut self, n: usize) -> Result<u64> {
        Ok(le(self.take(n)?))
    }

    /// Big-endian unsigned integer of `n` (<= 8) bytes.
    pub(crate) fn uint_be(&mut self, n: usize) -> Result<u64> {
        Ok(be(self.take(n)?))
    }

    /// A MySQL length-encoded integer.
    pub(crate) fn lenenc(&mut self) -> Result<u64> {
        match self.u8()? {
            0xfc => self.uint_le(2),
            0xfd => self.uint_le(3),
            0xfe => self.uint_le(8),
            0xfb | 0xff => Err(Error::corruption("bad length-encoded integer")),
            b => Ok(u64::from(b)),
        }
    }

    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = self.buf.get(self.pos..).unwrap_or_default();
        self.pos = self.buf.len();
        s
    }
}

pub(crate) fn le(b: &[u8]) -> u64 {
    b.iter()
        .rev()
        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

pub(crate) fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x))
}

fn bit(bits: &[u8], i: usize) -> bool {
    bits.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0)
}

pub(crate) fn count_bits(bits: &[u8], n: usize) -> usize {
    (0..n).filter(|&i| bit(bits, i)).count()
}

const DIG2BYTES: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
const POW10: [u32; 10] = [
    1,
    10,
    100,
    1000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Byte size of a binary DECIMAL(precision, scale).
pub(crate) fn decimal_size(precision: u8, scale: u8) -> usize {
    let intg = usize::from(precision.saturating_sub(scale));
    let scale = usize::from(scale);
    (intg / 9) * 4 + DIG2BYTES[intg % 9] + (scale / 9) * 4 + DIG2BYTES[scale % 9]
}

/// Renders MySQL's binary DECIMAL(precision, scale) as an exact plain string with exactly
/// `scale` fraction digits, appended to `out`. Checks the size and every digit group.
pub(crate) fn render_decimal(raw: &[u8], precision: u8, scale: u8, out: &mut String) -> Result<()> {
    let size = decimal_size(precision, scale);
    if raw.len() != size || size == 0 || size > 32 || scale > precision || precision > 65 {
        return Err(Error::corruption("DECIMAL value has the wrong size"));
    }
    let mut buf = [0u8; 32];
    let buf = buf
        .get_mut(..size)
        .ok_or_else(|| Error::corruption("DECIMAL too large"))?;
    buf.copy_from_slice(raw);
    let negative = buf[0] & 0x80 == 0;
    buf[0] ^= 0x80;
    if negative {
        for b in buf.iter_mut() {
            *b = !*b;
        }
    }
    let intg = usize::from(precision - scale);
    let (intg0, intg0x) = (intg / 9, intg % 9);
    let (frac0, frac0x) = (usize::from(scale) / 9, usize::from(scale) % 9);
    let mut c = Cursor::new(buf);
    // Digits go into a stack buffer first: the sign depends on whether any digit is non-zero.
    struct Digits {
        buf: [u8; 96],
        n: usize,
        int_started: bool,
        any_nonzero: bool,
    }
    fn group(c: &mut Cursor<'_>, d: &mut Digits, width: usize, strip: bool) -> Result<()> {
        let v = c.uint_be(DIG2BYTES[width])?;
        if v >= u64::from(POW10[width]) {
            return Err(Error::corruption("DECIMAL digit group out of range"));
        }
        d.any_nonzero |= v != 0;
        if strip && !d.int_started {
            if v == 0 {
                return Ok(());
            }
            d.int_started = true;
            let mut b = itoa::Buffer::new();
            for &x in b.format(v).as_bytes() {
                d.buf[d.n] = x;
                d.n += 1;
            }
            return Ok(());
        }
        let mut v = v as u32;
        for k in (0..width).rev() {
            d.buf[d.n + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        d.n += width;
        Ok(())
    }
    let mut d = Digits {
        buf: [0; 96],
        n: 0,
        int_started: false,
        any_nonzero: false,
    };
    if intg0x > 0 {
        group(&mut c, &mut d, intg0x, true)?;
    }
    for _ in 0..intg0 {
        group(&mut c, &mut d, 9, true)?;
    }
    let int_len = d.n;
    for _ in 0..frac0 {
        group(&mut c, &mut d, 9, false)?;
    }
    if frac0x > 0 {
        group(&mut c, &mut d, frac0x, false)?;
    }
    let any_nonzero = d.any_nonzero;
    let digits = d.buf;
    let n = d.n;
    let (int_digits, frac_digits) = digits[..n].split_at(int_len);
    if negative && any_nonzero {
        out.push('-');
    }
    if int_digits.is_empty() {
        out.push('0');
    } else {
        out.push_str(std::str::from_utf8(int_digits).unwrap_or("0"));
    }
    if scale > 0 {
        out.push('.');
        out.push_str(std::str::from_utf8(frac_digits).unwrap_or(""));
    }
    Ok(())
}

/// Checks a binary DECIMAL's size and digit groups without rendering it.
pub(crate) fn check_decimal(raw: &[u8], precision: u8, scale: u8) -> Result<()> {
    let size = decimal_size(precision, scale);
    if raw.len() != size || size == 0 || size > 32 || scale > precision || precision > 65 {
        return Err(Error::corruption("DECIMAL value has the wrong size"));
    }
    // Undo the sign encoding once: flip the sign bit, and invert a negative value's bytes.
    let mask = if raw[0] & 0x80 == 0 { 0xff } else { 0 };
    let mut b = [0u8; 32];
    for (d, &s) in b.iter_mut().zip(raw) {
        *d = s ^ mask;
    }
    b[0] ^= 0x80;
    let intg = usize::from(precision - scale);
    let frac = usize::from(scale);
    let mut at = 0;
    let mut group_ok = |w: usize| {
        let n = DIG2BYTES[w];
        let v = b
            .get(at..at + n)
            .unwrap_or_default()
            .iter()
            .fold(0u64, |v, &x| (v << 8) | u64::from(x));
        at += n;
        v < u64::from(POW10[w])
    };
    let ok = group_ok(intg % 9)
        && (0..intg / 9).all(|_| group_ok(9))
        && (0..frac / 9).all(|_| group_ok(9))
        && group_ok(frac % 9);
    if !ok {
        return Err(Error::corruption("DECIMAL digit group out of range"));
    }
    Ok(())
}

/// [`render_decimal`] into a new string.
pub(crate) fn decode_decimal(raw: &[u8], precision: u8, scale: u8) -> Result<String> {
    let mut out = String::with_capacity(usize::from(precision) + 3);
    render_decimal(raw, precision, scale, &mut out)?;
    Ok(out)
}

fn frac_bytes(fsp: u8) -> usize {
    usize::from(fsp).div_ceil(2)
}

/// Reads the fractional part of a TIMESTAMP2/DATETIME2 in microseconds.
fn read_frac(c: &mut Cursor<'_>, fsp: u8) -> Result<u32> {
    let n = frac_bytes(fsp);
    let v = c.uint_be(n)?;
    let us = match n {
        0 => 0,
        1 => v * 10_000,
        2 => v * 100,
        _ => v,
    };
    if us > 999_999 {
        return Err(Error::corruption("fractional seconds out of range"));
    }
    Ok(us as u32)
}

/// TIME2 to a packed i64 (MySQL `my_time_packed_from_binary`), sign handling included.
fn time2_packed(c: &mut Cursor<'_>, fsp: u8) -> Result<i64> {
    const TIMEF_INT_OFS: i64 = 0x80_0000;
    const TIMEF_OFS: i64 = 0x8000_0000_0000;
    Ok(match fsp {
        0 => (c.uint_be(3)? as i64 - TIMEF_INT_OFS) << 24,
        1 | 2 => {
            let mut intpart = c.uint_be(3)? as i64 - TIMEF_INT_OFS;
            let mut frac = i64::from(c.u8()?);
            if intpart < 0 && frac != 0 {
                intpart += 1;
                frac -= 0x100;
            }
            (intpart << 24) + frac * 10_000
        }
        3 | 4 => {
            let mut intpart = c.uint_be(3)? as i64 - TIMEF_INT_OFS;
            let mut frac = c.uint_be(2)? as i64;
            if intpart < 0 && frac != 0 {
                intpart += 1;
                frac -= 0x10000;
            }
            (intpart << 24) + frac * 100
        }
        _ => c.uint_be(6)? as i64 - TIMEF_OFS,
    })
}

fn time_from_packed(packed: i64, fsp: u8) -> Result<Value> {
    let negative = packed < 0;
    let t = packed.unsigned_abs();
    let hms = t >> 24;
    let micros = (t % (1 << 24)) as u32;
    let hour = ((hms >> 12) % (1 << 10)) as u32;
    let minute = ((hms >> 6) % (1 << 6)) as u8;
    let second = (hms % (1 << 6)) as u8;
    if micros > 999_999 || minute > 59 || second > 59 {
        return Err(Error::corruption("TIME value out of range"));
    }
    Ok(Value::Time {
        negative,
        hour,
        minute,
        second,
        micros,
        fsp,
    })
}

/// The value of a MariaDB `COMPRESSED` column (its `field_comp.cc` format): empty, or a header
/// byte (high nibble: the method, 0 = stored as is, 8 = zlib; bit 3: a raw deflate stream rather
/// than a zlib one; bits 0-2: the size of the original length), the original length big-endian,
/// then the data. The original length is checked against the column's maximum and the output
/// grows only as the data inflates, so a forged length cannot make us allocate.
pub(crate) fn uncompress_column(data: &[u8], max_len: u64) -> Result<Vec<u8>> {
    let Some((&header, rest)) = data.split_first() else {
        return Ok(Vec::new());
    };
    match header >> 4 {
        0 => Ok(rest.to_vec()),
        8 => {
            let n = usize::from(header & 7);
            let (len, input) = (n >= 1)
                .then(|| rest.split_at_checked(n))
                .flatten()
                .ok_or_else(|| Error::corruption("compressed column value: bad header"))?;
            let orig = len.iter().fold(0u64, |a, &b| (a << 8) | u64::from(b));
            if orig > max_len {
                return Err(Error::corruption(format!(
                    "compressed column value claims {orig} bytes, the column holds at most \
                     {max_len}"
                )));
            }
            let orig = usize::try_from(orig)
                .map_err(|_| Error::corruption("compressed column value too long"))?;
            let mut z = flate2::Decompress::new(header & 8 == 0);
            let mut out = Vec::with_capacity(orig.min(1 << 20));
            loop {
                if out.len() == out.capacity() {
                    out.reserve((orig + 1 - out.len()).min(1 << 20));
                }
                let consumed = usize::try_from(z.total_in()).unwrap_or(usize::MAX);
                let before = (consumed, out.len());
                let status = z
                    .decompress_vec(
                        input.get(consumed..).unwrap_or_default(),
                        &mut out,
                        flate2::FlushDecompress::Finish,
                    )
                    .map_err(|e| {
                        Error::corruption(format!("compressed column value: bad zlib data: {e}"))
                    })?;
                if out.len() > orig {
                    return Err(Error::corruption(
                        "compressed column value inflates beyond its length",
                    ));
                }
                match status {
                    flate2::Status::StreamEnd => break,
                    _ if (
                        usize::try_from(z.total_in()).unwrap_or(usize::MAX),
                        out.len(),
                    ) == before =>
                    {
                        return Err(Error::corruption(
                            "compressed column value: the zlib data ends early",
                        ));
                    }
                    _ => {}
                }
            }
            if out.len() != orig {
                return Err(Error::corruption(format!(
                    "compressed column value inflates to {} bytes, its header says {orig}",
                    out.len()
                )));
            }
            Ok(out)
        }
        m => Err(Error::unsupported(format!(
            "compressed column value with compression method {m}"
        ))),
    }
}

fn read_len(c: &mut Cursor<'_>, len_bytes: u8) -> Result<usize> {
    usize::try_from(c.uint_le(usize::from(len_bytes))?)
        .map_err(|_| Error::corruption("length does not fit in memory"))
}

fn labels_for_set(labels: &[Vec<u8>], bits: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    for (i, label) in labels.iter().enumerate().take(64) {
        if bits & (1 << i) != 0 {
            if !out.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(label);
        }
    }
    // A bit with no member name means the labels do not describe this value.
    if labels.len() < 64 && bits >> labels.len() != 0 {
        return None;
    }
    Some(out)
}

/// Decodes one non-NULL column value.
pub(crate) fn decode_value(
    c: &mut Cursor<'_>,
    dec: &ColumnDecoder,
    src: &bytes::Bytes,
) -> Result<Value> {
    Ok(match dec {
        ColumnDecoder::Int { bytes, unsigned } => {
            let n = usize::from(*bytes);
            let raw = c.uint_le(n)?;
            if *unsigned {
                Value::UInt(raw)
            } else {
                let shift = 64 - 8 * n as u32;
                Value::Int(((raw << shift) as i64) >> shift)
            }
        }
        ColumnDecoder::Float => Value::Float(f32::from_bits(c.uint_le(4)? as u32)),
        ColumnDecoder::Double => Value::Double(f64::from_bits(c.uint_le(8)?)),
        ColumnDecoder::Decimal { precision, scale } => {
            let raw = c.take(decimal_size(*precision, *scale))?;
            Value::Decimal(Decimal::from_binary(raw, *precision, *scale)?)
        }
        ColumnDecoder::Bit { nbits } => Value::Bit(c.uint_be(usize::from(*nbits).div_ceil(8))?),
        ColumnDecoder::Year => {
            let y = c.u8()?;
            Value::Year(if y == 0 { 0 } else { 1900 + u16::from(y) })
        }
        ColumnDecoder::Date => {
            let v = c.uint_le(3)?;
            Value::Date {
                year: (v >> 9) as u16,
                month: ((v >> 5) & 15) as u8,
                day: (v & 31) as u8,
            }
        }
        ColumnDecoder::TimeOld => {
            let raw = c.uint_le(3)?;
            let v = ((raw << 40) as i64) >> 40;
            let a = v.unsigned_abs();
            let (hour, minute, second) = (a / 10_000, (a / 100) % 100, a % 100);
            if minute > 59 || second > 59 {
                return Err(Error::corruption("TIME value out of range"));
            }
            Value::Time {
                negative: v < 0,
                hour: hour as u32,
                minute: minute as u8,
                second: second as u8,
                micros: 0,
                fsp: 0,
            }
        }
        ColumnDecoder::DateTimeOld => {
            let v = c.uint_le(8)?;
            let (date, time) = (v / 1_000_000, v % 1_000_000);
            Value::DateTime {
                year: (date / 10_000) as u16,
                month: ((date / 100) % 100) as u8,
                day: (date % 100) as u8,
                hour: (time / 10_000) as u8,
                minute: ((time / 100) % 100) as u8,
                second: (time % 100) as u8,
                micros: 0,
                fsp: 0,
            }
        }
        ColumnDecoder::TimestampOld => Value::Timestamp {
            seconds: c.uint_le(4)? as i64,
            micros: 0,
            fsp: 0,
        },
        ColumnDecoder::Timestamp2 { fsp } => {
            let seconds = c.uint_be(4)? as i64;
            let micros = read_frac(c, *fsp)?;
            Value::Timestamp {
                seconds,
                micros,
                fsp: *fsp,
            }
        }
        ColumnDecoder::DateTime2 { fsp } => {
            const DATETIMEF_INT_OFS: i64 = 0x80_0000_0000;
            let intpart = c.uint_be(5)? as i64 - DATETIMEF_INT_OFS;
            let micros = read_frac(c, *fsp)?;
            if intpart < 0 {
                return Err(Error::corruption("negative DATETIME"));
            }
            let ymd = intpart >> 17;
            let ym = ymd >> 5;
            let hms = intpart % (1 << 17);
            Value::DateTime {
                year: u16::try_from(ym / 13).map_err(|_| Error::corruption("DATETIME year"))?,
                month: (ym % 13) as u8,
                day: (ymd % (1 << 5)) as u8,
                hour: (hms >> 12) as u8,
                minute: ((hms >> 6) % (1 << 6)) as u8,
                second: (hms % (1 << 6)) as u8,
                micros,
                fsp: *fsp,
            }
        }
        ColumnDecoder::Time2 { fsp } => time_from_packed(time2_packed(c, *fsp)?, *fsp)?,
        ColumnDecoder::VarString { len_bytes } | ColumnDecoder::Blob { len_bytes } => {
            let n = read_len(c, *len_bytes)?;
            Value::Bytes(c.take_shared(n, src)?)
        }
        ColumnDecoder::Compressed { len_bytes, max_len } => {
            let n = read_len(c, *len_bytes)?;
            Value::Bytes(uncompress_column(c.take(n)?, *max_len)?.into())
        }
        ColumnDecoder::FixString {
            len_bytes,
            max_len,
            pad_binary,
        } => {
            let n = read_len(c, *len_bytes)?;
            // The server strips BINARY(n)'s trailing zero bytes when logging; SELECT shows them.
            if *pad_binary && n < usize::from(*max_len) {
                let mut v = c.take(n)?.to_vec();
                v.resize(usize::from(*max_len), 0);
                Value::Bytes(v.into())
            } else {
                Value::Bytes(c.take_shared(n, src)?)
            }
        }
        ColumnDecoder::Json { len_bytes } => {
            let n = read_len(c, *len_bytes)?;
            Value::Json(jsonb::to_text(c.take(n)?)?)
        }
        ColumnDecoder::Geometry { len_bytes } => {
            let n = read_len(c, *len_bytes)?;
            let raw = c.take(n)?;
            if raw.len() < 4 {
                return Err(Error::corruption("GEOMETRY value shorter than its SRID"));
            }
            let (srid, wkb) = raw.split_at(4);
            Value::Geometry {
                srid: le(srid) as u32,
                wkb: wkb.to_vec(),
            }
        }
        ColumnDecoder::Enum { pack, labels } => {
            let index = c.uint_le(usize::from(*pack))? as u16;
            let label = match labels {
                Some(l) if index == 0 => Some(Vec::new()).filter(|_| !l.is_empty()),
                Some(l) => l.get(usize::from(index) - 1).cloned(),
                None => None,
            };
            Value::Enum { index, label }
        }
        ColumnDecoder::Set { pack, labels } => {
            let bits = c.uint_le(usize::from(*pack))?;
            Value::Set {
                bits,
                labels: labels.as_deref().and_then(|l| labels_for_set(l, bits)),
            }
        }
        ColumnDecoder::Null => Value::Null,
    })
}

/// What kind of rows event is being decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowsKind {
    Write,
    Update,
    Delete,
    /// MySQL PARTIAL_UPDATE_ROWS: the after image may carry JSON diffs.
    PartialUpdate,
}

/// Reads one row image: null bitmap over the present columns, then their values.
/// `before` is the before-image of the same row, used to apply JSON diffs.
fn read_image(
    c: &mut Cursor<'_>,
    src: &bytes::Bytes,
    schema: &TableSchema,
    present: &[u8],
    partial_json: Option<&[u8]>,
    before: Option<&[Value]>,
) -> Result<Vec<Value>> {
    let ncols = schema.decoders.len();
    let n_present = count_bits(present, ncols);
    let nulls = c.take(n_present.div_ceil(8))?;
    let mut values = Vec::with_capacity(ncols);
    let mut pi = 0usize;
    let mut json_i = 0usize;
    for (i, dec) in schema.decoders.iter().enumerate() {
        let is_json = matches!(dec, ColumnDecoder::Json { .. });
        let json_idx = json_i;
        if is_json {
            json_i += 1;
        }
        if !bit(present, i) {
            values.push(Value::Missing);
            continue;
        }
        let is_null = bit(nulls, pi);
        pi += 1;
        if is_null {
            values.push(Value::Null);
            continue;
        }
        let partial = is_json && partial_json.is_some_and(|p| bit(p, json_idx));
        if partial {
            let ColumnDecoder::Json { len_bytes } = dec else {
                unreachable_json()?
            };
            let n = read_len(c, *len_bytes)?;
            let diff = c.take(n)?;
            match before.and_then(|b| b.get(i)) {
                Some(Value::Json(base)) => values.push(Value::Json(jsonb::apply_diff(base, diff)?)),
                // The before-image does not carry the document (binlog_row_image=MINIMAL): the
                // binlog holds only the change, so that is what the record carries.
                Some(Value::Missing) | None => {
                    values.push(Value::JsonDiff(jsonb::diff_to_text(diff)?))
                }
                Some(_) => {
                    return Err(Error::corruption(format!(
                        "partial JSON update of column {} whose before-image is not JSON",
                        i + 1
                    )))
                }
            }
        } else {
            values.push(decode_value(c, dec, src).map_err(|e| column_context(e, schema, i))?);
        }
    }
    Ok(values)
}

fn unreachable_json<T>() -> Result<T> {
    Err(Error::new(
        crate::error::ErrorKind::Internal,
        "JSON decoder mismatch",
    ))
}

fn column_context(e: Error, schema: &TableSchema, i: usize) -> Error {
    let name = schema.info.fields.get(i).map_or("?", |f| f.name.as_str());
    Error::new(
        e.kind(),
        format!(
            "{} (column {} `{name}` of {}.{})",
            e.message(),
            i + 1,
            schema.info.database,
            schema.info.table
        ),
    )
}

/// One decoded row change: before and after images.
pub(crate) type RowPair = (Option<Vec<Value>>, Option<Vec<Value>>);

/// Decodes every row of a rows event.
pub(crate) fn decode_rows(
    rows_data: &bytes::Bytes,
    schema: &TableSchema,
    kind: RowsKind,
    before_cols: Option<&[u8]>,
    after_cols: Option<&[u8]>,
    mut emit: impl FnMut(RowPair) -> Result<()>,
) -> Result<()> {
    let mut c = Cursor::new(rows_data);
    let none = || Error::corruption("rows event without a column bitmap");
    while !c.is_empty() {
        let before_row = c.offset();
        match kind {
            RowsKind::Write => {
                let after = read_image(
                    &mut c,
                    rows_data,
                    schema,
                    after_cols.ok_or_else(none)?,
                    None,
                    None,
                )?;
                emit((None, Some(after)))?;
            }
            RowsKind::Delete => {
                let before = read_image(
                    &mut c,
                    rows_data,
                    schema,
                    before_cols.ok_or_else(none)?,
                    None,
                    None,
                )?;
                emit((Some(before), None))?;
            }
            RowsKind::Update => {
                let before = read_image(
                    &mut c,
                    rows_data,
                    schema,
                    before_cols.ok_or_else(none)?,
                    None,
                    None,
                )?;
                let after = read_image(
                    &mut c,
                    rows_data,
                    schema,
                    after_cols.ok_or_else(none)?,
                    None,
                    None,
                )?;
                emit((Some(before), Some(after)))?;
            }
            RowsKind::PartialUpdate => {
                let before = read_image(
                    &mut c,
                    rows_data,
                    schema,
                    before_cols.ok_or_else(none)?,
                    None,
                    None,
                )?;
                let options = c.lenenc()?;
                let partial = if options & 1 != 0 {
                    Some(c.take(schema.json_columns.div_ceil(8))?)
                } else {
                    None
                };
                let after = read_image(
                    &mut c,
                    rows_data,
                    schema,
                    after_cols.ok_or_else(none)?,
                    partial,
                    Some(&before),
                )?;
                emit((Some(before), Some(after)))?;
            }
        }
        // A row image that takes no bytes (no columns in the image) would repeat forever.
        if c.offset() == before_row {
            return Err(Error::corruption("rows event has an empty row image"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        // 1234567890.1234 as DECIMAL(14,4): from MySQL docs example layout.
        let v = decode_decimal(&[0x81, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2], 14, 4).unwrap();
        assert_eq!(v, "1234567890.1234");
        // -1234567890.1234
        let neg: Vec<u8> = [0x81u8, 0x0D, 0xFB, 0x38, 0xD2, 0x04, 0xD2]
            .iter()
            .map(|b| !b)
            .collect();
        let v = decode_decimal(&neg, 14, 4).unwrap();
        assert_eq!(v, "-1234567890.1234");
        assert!(decode_decimal(&[0x80], 1, 0).is_ok());
        assert_eq!(decode_decimal(&[0x80], 1, 0).unwrap(), "0");
        assert!(decode_decimal(&[0x80, 0], 1, 0).is_err());
    }

    #[test]
    fn decimal_check_agrees_with_render() {
        // Random bytes for many precisions and scales: the cheap check accepts exactly what the
        // renderer accepts.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for p in 1u8..=65 {
            for s in (0..=p.min(30)).step_by(3) {
                let size = decimal_size(p, s);
                for _ in 0..40 {
                    let raw: Vec<u8> = (0..size)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            // Mostly small digits so that valid values are common too.
                            if x.is_multiple_of(3) {
                                (x >> 8) as u8
                            } else {
                                ((x >> 8) % 4) as u8 | (0x80 * u8::from(x.is_multiple_of(5)))
                            }
                        })
                        .collect();
                    let mut out = String::new();
                    assert_eq!(
                        check_decimal(&raw, p, s).is_ok(),
                        render_decimal(&raw, p, s, &mut out).is_ok(),
                        "p={p} s={s} raw={raw:02x?}"
                    );
                }
            }
        }
    }

    #[test]
    fn time2_negative_fraction() {
        // -00:00:01.5 as TIME(1): intpart -1 -> stored as -2 with frac 0x100-50.
        let packed: i64 = -((1i64 << 24) + 500_000);
        let v = time_from_packed(packed, 1).unwrap();
        assert_eq!(
            v,
            Value::Time {
                negative: true,
                hour: 0,
                minute: 0,
                second: 1,
                micros: 500_000,
                fsp: 1
            }
        );
        // Stored bytes for -00:00:01.5 at fsp 1: intpart = -2 + 0x800000, frac = 0x100 - 50.
        let raw = [0x7f, 0xff, 0xfe, 206];
        let mut c = Cursor::new(&raw);
        assert_eq!(time2_packed(&mut c, 1).unwrap(), packed);
    }

    #[test]
    fn cursor_never_panics() {
        let mut c = Cursor::new(&[1, 2]);
        assert!(c.take(3).is_err());
        assert!(c.uint_le(usize::MAX).is_err());
        assert_eq!(c.take(2).unwrap(), &[1, 2]);
    }

    #[test]
    fn compressed_column_values_are_checked() {
        use std::io::Write as _;
        let raw = |data: &[u8]| {
            let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(data).unwrap();
            e.finish().unwrap()
        };
        let text = b"abcabcabcabcabcabcabcabcabcabc".repeat(10);
        let mut v = vec![0x80 | 8 | 2, 0x01, 0x2c]; // zlib method, raw deflate, 2 length bytes: 300
        v.extend(raw(&text));
        assert_eq!(uncompress_column(&v, 300).unwrap(), text);
        // Stored as is, and empty.
        assert_eq!(uncompress_column(&[0, b'x'], 10).unwrap(), b"x");
        assert!(uncompress_column(&[], 10).unwrap().is_empty());
        // The claimed length beyond the column, a wrong length, cut data, garbage, no length.
        assert!(uncompress_column(&v, 299).is_err());
        let mut short = v.clone();
        short[2] = 0x2b;
        assert!(uncompress_column(&short, 300).is_err());
        let mut long = v.clone();
        long[2] = 0x2d;
        assert!(uncompress_column(&long, 300).is_err());
        assert!(uncompress_column(&v[..v.len() - 3], 300).is_err());
        assert!(uncompress_column(&[0x89, 0x05, 1, 2, 3], 300).is_err());
        assert!(uncompress_column(&[0x88], 300).is_err());
        assert!(uncompress_column(&[0x80 | 8 | 4, 0xff, 0xff, 0xff, 0xff], u64::MAX).is_err());
        assert!(uncompress_column(&[0x30, 1], 300).is_err());
    }
}
