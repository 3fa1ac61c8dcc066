//! Viewing tracked data: filtered queries over the store, and the details of one record.
//!
//! A query selects records by database and table (through the store's object index: a query
//! for one table reads only that table's records), by change type, by column conditions on the
//! pre- or post-image, and by a time range (through the time index), newest first by default,
//! a page at a time.

use std::borrow::Cow;
use std::cmp::Ordering;

use crate::error::{Error, ErrorKind, Result};
use crate::record::{json, ChangeRecord, ColumnKind, Field, Op, Value};
use crate::store::{DataRange, ReadFrom, Store};

/// Which row image a condition looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Image {
    /// The row before the change (UPDATE, DELETE).
    Before,
    /// The row after the change (INSERT, UPDATE).
    After,
    /// Either: the condition holds if it holds for the pre- or the post-image.
    Either,
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=` or `<>`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `LIKE` (`%` any run, `_` one character, `\` escapes; ASCII case-insensitive, as MySQL's
    /// default collations).
    Like,
    /// `IS NULL`
    IsNull,
    /// `IS NOT NULL`
    IsNotNull,
}

/// `column op value`, e.g. `price >= 10`, `after.status = 'shipped'`, `note IS NULL`.
///
/// Numbers (integer, DECIMAL, FLOAT, BIT, YEAR columns) compare numerically (exactly for
/// integers and DECIMAL); everything else compares as text in the JSON contract's form
/// (dates `YYYY-MM-DD HH:MM:SS`, strings as UTF-8; binary columns by their bytes). Column names
/// match case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Condition {
    /// The image it applies to (a `before.` or `after.` prefix; default: either).
    pub image: Image,
    /// The column name.
    pub column: String,
    /// The operator.
    pub op: CmpOp,
    /// The value (none for `IS [NOT] NULL`).
    pub value: Option<String>,
}

impl std::str::FromStr for Condition {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::invalid(format!(
                "bad condition {s:?}: {why} (use 'COLUMN OP VALUE' with OP one of = != <> < <= > >= LIKE, or 'COLUMN IS [NOT] NULL')"
            ))
        };
        let s_trim = s.trim();
        let end = s_trim
            .find(|c: char| c.is_whitespace() || "=!<>".contains(c))
            .ok_or_else(|| bad("no operator"))?;
        let (col, rest) = s_trim.split_at(end);
        let (image, column) = match col.split_once('.') {
            Some((p, c)) if p.eq_ignore_ascii_case("before") || p.eq_ignore_ascii_case("old") => {
                (Image::Before, c)
            }
            Some((p, c)) if p.eq_ignore_ascii_case("after") || p.eq_ignore_ascii_case("new") => {
                (Image::After, c)
            }
            Some((p, _)) if !col.starts_with('`') => {
                return Err(bad(&format!(
                    "{col:?} has the prefix {p:?}: the only prefixes are before. and after. \
                     (a column name with a dot goes in backquotes)"
                )))
            }
            _ => (Image::Either, col),
        };
        let column = match column.strip_prefix('`') {
            Some(c) => c
                .strip_suffix('`')
                .ok_or_else(|| bad("a backquote is not closed"))?,
            None => column,
        };
        if column.is_empty() {
            return Err(bad("no column"));
        }
        let rest = rest.trim_start();
        let upper = rest.to_ascii_uppercase();
        let words: Vec<&str> = upper.split_whitespace().collect();
        if words.first() == Some(&"IS") {
            let op = match words.as_slice() {
                ["IS", "NULL"] => CmpOp::IsNull,
                ["IS", "NOT", "NULL"] => CmpOp::IsNotNull,
                _ => return Err(bad("IS must be followed by NULL or NOT NULL")),
            };
            return Ok(Self {
                image,
                column: column.to_owned(),
                op,
                value: None,
            });
        }
        let (op, len) = if upper.starts_with("LIKE") && upper[4..].starts_with(char::is_whitespace)
        {
            (CmpOp::Like, 4)
        } else {
            [
                ("!=", CmpOp::Ne),
                ("<>", CmpOp::Ne),
                ("<=", CmpOp::Le),
                (">=", CmpOp::Ge),
                ("=", CmpOp::Eq),
                ("<", CmpOp::Lt),
                (">", CmpOp::Gt),
            ]
            .into_iter()
            .find(|(t, _)| rest.starts_with(t))
            .map(|(t, op)| (op, t.len()))
            .ok_or_else(|| bad("unknown operator"))?
        };
        let v = rest[len..].trim();
        if v.is_empty() {
            return Err(bad("no value"));
        }
        if v.starts_with(|c: char| "=!<>".contains(c)) {
            let op_text: String = rest
                .chars()
                .take_while(|c| "=!<>".contains(*c) || c.is_whitespace())
                .filter(|c| !c.is_whitespace())
                .collect();
            return Err(bad(&format!(
                "unknown operator {op_text:?} (quote a value that starts with one of = ! < >)"
            )));
        }
        for q in ['\'', '"'] {
            if v.starts_with(q) && (v.len() < 2 || !v.ends_with(q)) {
                return Err(bad("a quote is not closed"));
            }
        }
        Ok(Self {
            image,
            column: column.to_owned(),
            op,
            value: Some(unquote(v)),
        })
    }
}

/// `'it''s'` or `"x"` to the text inside; anything else as is.
fn unquote(v: &str) -> String {
    for q in ['\'', '"'] {
        if v.len() >= 2 && v.starts_with(q) && v.ends_with(q) {
            let inner = &v[1..v.len() - 1];
            return inner.replace(&format!("{q}{q}"), &q.to_string());
        }
    }
    v.to_owned()
}

/// The change types a query returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(clippy::struct_excessive_bools)]
pub struct ChangeTypes {
    /// INSERT
    pub insert: bool,
    /// UPDATE
    pub update: bool,
    /// DELETE
    pub delete: bool,
    /// DDL
    pub ddl: bool,
}

impl Default for ChangeTypes {
    fn default() -> Self {
        Self {
            insert: true,
            update: true,
            delete: true,
            ddl: true,
        }
    }
}

impl std::str::FromStr for ChangeTypes {
    type Err = Error;

    /// `INSERT,UPDATE,DELETE,DDL` (any subset, any case).
    fn from_str(s: &str) -> Result<Self> {
        let mut t = Self {
            insert: false,
            update: false,
            delete: false,
            ddl: false,
        };
        for w in s.split(',').map(str::trim) {
            match w.to_ascii_uppercase().as_str() {
                "INSERT" => t.insert = true,
                "UPDATE" => t.update = true,
                "DELETE" => t.delete = true,
                "DDL" => t.ddl = true,
                _ => {
                    return Err(Error::invalid(format!(
                        "unknown change type {w:?}: use INSERT, UPDATE, DELETE, DDL"
                    )))
                }
            }
        }
        Ok(t)
    }
}

impl ChangeTypes {
    fn allows(self, op: Op) -> bool {
        match op {
            Op::Insert => self.insert,
            Op::Update => self.update,
            Op::Delete => self.delete,
            Op::Ddl => self.ddl,
            Op::Begin | Op::Commit | Op::Heartbeat => false,
        }
    }
}

/// A query. The default: every table, all four change types, the last minute of stored data,
/// newest first, 20 records.
#[derive(Clone, Debug)]
pub struct Query {
    /// Only this database.
    pub database: Option<String>,
    /// Only this table (needs `database`, or is written `db.table`).
    pub table: Option<String>,
    /// Conditions, all of which must hold.
    pub conditions: Vec<Condition>,
    /// The change types.
    pub types: ChangeTypes,
    /// From this time (epoch seconds, inclusive). Default: one minute before the newest record
    /// (or the oldest record's time when only `to_time` is given).
    pub from_time: Option<u32>,
    /// To this time (inclusive). Default: the newest record's time.
    pub to_time: Option<u32>,
    /// At most this many records. Default: 20. Range: 1 to 100 000.
    pub limit: usize,
    /// Oldest first instead of newest first.
    pub oldest_first: bool,
    /// Continue after the page that returned this cursor.
    pub cursor: Option<String>,
}

impl Default for Query {
    fn default() -> Self {
        Self {
            database: None,
            table: None,
            conditions: Vec::new(),
            types: ChangeTypes::default(),
            from_time: None,
            to_time: None,
            limit: 20,
            oldest_first: false,
            cursor: None,
        }
    }
}

/// One page of results.
#[derive(Clone, Debug)]
pub struct QueryPage {
    /// The matching records, in the query's order.
    pub records: Vec<ChangeRecord>,
    /// The store's data range (`None` when empty).
    pub range: Option<DataRange>,
    /// The time range searched (after defaults).
    pub from_time: u32,
    /// The time range searched (after defaults).
    pub to_time: u32,
    /// Pass this as [`Query::cursor`] for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
    /// Stored records read to answer (for tests and tuning: a one-table query reads only that
    /// table's records).
    pub visited: u64,
}

/// Time index semantics: a record is "at" the running maximum of the timestamps up to it, the
/// same axis seeks use, so a range never splits a second.
fn seq_bounds(store: &Store, from: u32, to: u32, last: u64) -> Result<(u64, u64)> {
    let lo = store.resolve(ReadFrom::Timestamp(from))?;
    let hi = match to.checked_add(1) {
        Some(next) => match store.resolve(ReadFrom::Timestamp(next)) {
            Ok(s) => s.saturating_sub(1),
            Err(e) if e.kind() == ErrorKind::OutOfRange => last,
            Err(e) => return Err(e),
        },
        None => last,
    };
    Ok((lo, hi))
}

impl Store {
    /// Runs a query.
    ///
    /// # Errors
    /// `OutOfRange` (stating the data range) for a time range outside it; `InvalidArgument`
    /// for a bad limit, cursor or table name; store errors.
    pub fn query(&self, q: &Query) -> Result<QueryPage> {
        if !(1..=100_000).contains(&q.limit) {
            return Err(Error::invalid("the limit is 1 to 100000"));
        }
        let (database, table) = match (&q.database, &q.table) {
            (db, Some(t)) => match (db, t.split_once('.')) {
                (Some(d), _) => (Some(d.clone()), Some(t.clone())),
                (None, Some((d, t))) => (Some(d.to_owned()), Some(t.to_owned())),
                (None, None) => {
                    return Err(Error::invalid(
                        "a table needs its database: give --database, or the table as db.table",
                    ))
                }
            },
            (db, None) => (db.clone(), None),
        };
        let range = self.data_range()?;
        if range.is_some() {
            self.check_names(database.as_deref(), table.as_deref(), &q.conditions)?;
        }
        let Some(r) = range.clone() else {
            return Ok(QueryPage {
                records: Vec::new(),
                range,
                from_time: q.from_time.unwrap_or(0),
                to_time: q.to_time.unwrap_or(0),
                next_cursor: None,
                visited: 0,
            });
        };
        let to = q.to_time.unwrap_or(r.newest.timestamp);
        let from = q.from_time.unwrap_or(if q.to_time.is_some() {
            r.oldest.timestamp
        } else {
            r.newest.timestamp.saturating_sub(60)
        });
        if from > to {
            return Err(Error::invalid(format!(
                "the time range starts ({from}) after it ends ({to})"
            )));
        }
        if to < r.oldest.timestamp || from > r.newest.timestamp {
            return Err(Error::new(
                ErrorKind::OutOfRange,
                format!("time range {from}..{to} is outside the data range ({r})"),
            ));
        }
        let (mut lo, mut hi) = seq_bounds(self, from.max(r.oldest.timestamp), to, r.newest.seq)?;
        lo = lo.max(r.oldest.seq);
        hi = hi.min(r.newest.seq);
        if let Some(c) = &q.cursor {
            let seq: u64 = c
                .strip_prefix('s')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| Error::invalid(format!("bad cursor {c:?}")))?;
            if q.oldest_first {
                lo = lo.max(seq.saturating_add(1));
            } else {
                hi = hi.min(seq.saturating_sub(1));
            }
        }
        let reverse = !q.oldest_first;
        let mut page = QueryPage {
            records: Vec::new(),
            range,
            from_time: from,
            to_time: to,
            next_cursor: None,
            visited: 0,
        };
        let mut more = false;
        let mut take = |rec: ChangeRecord, page: &mut QueryPage| -> Result<bool> {
            page.visited += 1;
            if !object_matches(&rec, database.as_deref(), table.as_deref())
                || !q.types.allows(rec.op)
                || !q.conditions.iter().all(|c| condition_holds(c, &rec))
            {
                return Ok(true);
            }
            if page.records.len() == q.limit {
                more = true;
                return Ok(false);
            }
            page.records.push(rec);
            Ok(true)
        };
        match &database {
            Some(db) => {
                let mut cursor = self.record_cursor()?;
                self.for_each_run(db, table.as_deref(), lo, hi, reverse, |first, last| {
                    cursor.scan(first, last, reverse, |rec| take(rec, &mut page))
                })?;
            }
            None => {
                self.scan(lo, hi, reverse, |rec| take(rec, &mut page))?;
            }
        }
        if more {
            page.next_cursor = page.records.last().map(|r| format!("s{}", r.seq));
        }
        Ok(page)
    }
}

/// At most this many names in an error message.
const NAMES_SHOWN: usize = 30;

/// `a, b, c` (with "and N more" past [`NAMES_SHOWN`]).
fn name_list(names: &[String]) -> String {
    let mut s = names
        .iter()
        .take(NAMES_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES_SHOWN {
        s.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    s
}

impl Store {
    /// A query's database, table and condition columns must exist in the store: an unknown
    /// one is `InvalidArgument` naming what exists.
    fn check_names(
        &self,
        database: Option<&str>,
        table: Option<&str>,
        conditions: &[Condition],
    ) -> Result<()> {
        let tables = self.known_tables()?;
        if let Some(db) = database {
            let mut dbs = self.known_databases()?;
            dbs.extend(tables.iter().map(|t| t.database.clone()));
            dbs.sort();
            dbs.dedup();
            let db_known = dbs.iter().any(|d| d == db);
            match table {
                Some(t) if !tables.iter().any(|k| k.database == db && k.table == t) => {
                    let names: Vec<String> = tables
                        .iter()
                        .filter(|k| !db_known || k.database == db)
                        .map(|k| format!("{}.{}", k.database, k.table))
                        .collect();
                    return Err(Error::invalid(format!(
                        "the store has no table {db}.{t}; {}: {}",
                        if db_known {
                            format!("the tables of {db}")
                        } else {
                            "its tables".to_owned()
                        },
                        if names.is_empty() {
                            "none".to_owned()
                        } else {
                            name_list(&names)
                        }
                    )));
                }
                None if !db_known => {
                    return Err(Error::invalid(format!(
                        "the store has no database {db:?}; its databases: {}",
                        name_list(&dbs)
                    )));
                }
                _ => {}
            }
        }
        let scope: Vec<&crate::store::KnownTable> = tables
            .iter()
            .filter(|k| {
                database.is_none_or(|d| k.database == d) && table.is_none_or(|t| k.table == t)
            })
            .collect();
        let mut columns: Vec<String> = scope.iter().flat_map(|k| k.columns.clone()).collect();
        columns.sort();
        columns.dedup();
        if columns.is_empty() {
            // Only DDL named the table(s): nothing to check against.
            return Ok(());
        }
        for c in conditions {
            if !columns.iter().any(|n| n.eq_ignore_ascii_case(&c.column)) {
                let place = match (database, table) {
                    (Some(d), Some(t)) => format!("{d}.{t}"),
                    (Some(d), None) => format!("any table of {d}"),
                    _ => "any stored table".to_owned(),
                };
                return Err(Error::invalid(format!(
                    "no column {:?} in {place}; the columns: {}",
                    c.column,
                    name_list(&columns)
                )));
            }
        }
        Ok(())
    }
}

/// Whether the record belongs to the object (the index may hold runs of a transaction that was
/// abandoned and whose seqs were reused: every record is checked).
fn object_matches(rec: &ChangeRecord, database: Option<&str>, table: Option<&str>) -> bool {
    let Some(db) = database else { return true };
    let (rdb, rtable): (Option<Cow<'_, str>>, Option<Cow<'_, str>>) = match rec.op {
        Op::Ddl => {
            let stmt = rec.ddl.as_ref().map_or("", |d| d.statement.as_str());
            let (d, t) = crate::filter::ddl_object(stmt);
            (
                d.map(Cow::Owned)
                    .or_else(|| rec.database_name().map(Cow::Borrowed)),
                t.map(Cow::Owned),
            )
        }
        _ => (
            rec.database_name().map(Cow::Borrowed),
            rec.table_name().map(Cow::Borrowed),
        ),
    };
    rdb.as_deref() == Some(db) && table.is_none_or(|t| rtable.as_deref() == Some(t))
}

/// A value as text for comparison and display: `None` for NULL or a column missing from the
/// image.
#[must_use]
pub fn value_text<'a>(v: &'a Value, f: &Field) -> Option<Cow<'a, str>> {
    match v {
        Value::Null | Value::Missing => None,
        Value::Bytes(b) if matches!(f.kind, ColumnKind::Binary | ColumnKind::Blob) => {
            Some(String::from_utf8_lossy(b))
        }
        _ => {
            let mut out = String::new();
            json::push_value(&mut out, v, f);
            if out.starts_with('"') {
                if let Ok(s) = serde_json::from_str::<String>(&out) {
                    return Some(Cow::Owned(s));
                }
            }
            Some(Cow::Owned(out))
        }
    }
}

fn condition_holds(c: &Condition, rec: &ChangeRecord) -> bool {
    let Some(t) = rec.table.as_deref() else {
        return false;
    };
    let Some(i) = t
        .fields
        .iter()
        .position(|f| f.name.eq_ignore_ascii_case(&c.column))
    else {
        return false;
    };
    let f = &t.fields[i];
    let test = |img: Option<&Vec<Value>>| -> bool {
        let Some(v) = img.and_then(|vals| vals.get(i)) else {
            return false;
        };
        if matches!(v, Value::Missing) {
            return false;
        }
        let text = value_text(v, f);
        match (c.op, text) {
            (CmpOp::IsNull, t) => t.is_none(),
            (CmpOp::IsNotNull, t) => t.is_some(),
            (_, None) => false,
            (CmpOp::Like, Some(t)) => like(&t, c.value.as_deref().unwrap_or_default()),
            (op, Some(t)) => {
                let want = c.value.as_deref().unwrap_or_default();
                let ord = if is_numeric(f.kind) {
                    match compare_numbers(&t, want, f.kind) {
                        Some(o) => o,
                        None => return false,
                    }
                } else {
                    t.as_ref().cmp(want)
                };
                match op {
                    CmpOp::Eq => ord == Ordering::Equal,
                    CmpOp::Ne => ord != Ordering::Equal,
                    CmpOp::Lt => ord == Ordering::Less,
                    CmpOp::Le => ord != Ordering::Greater,
                    CmpOp::Gt => ord == Ordering::Greater,
                    CmpOp::Ge => ord != Ordering::Less,
                    CmpOp::Like | CmpOp::IsNull | CmpOp::IsNotNull => false,
                }
            }
        }
    };
    match c.image {
        Image::Before => test(rec.before.as_ref()),
        Image::After => test(rec.after.as_ref()),
        Image::Either => test(rec.before.as_ref()) || test(rec.after.as_ref()),
    }
}

fn is_numeric(k: ColumnKind) -> bool {
    matches!(
        k,
        ColumnKind::Integer
            | ColumnKind::Float
            | ColumnKind::Decimal
            | ColumnKind::Bit
            | ColumnKind::Year
    )
}

/// Compares two numbers given as text: exactly for decimal literals, as `f64` for floats.
/// `None` when either is not a number.
fn compare_numbers(a: &str, b: &str, kind: ColumnKind) -> Option<Ordering> {
    if kind == ColumnKind::Float {
        let (x, y) = (a.parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
        return x.partial_cmp(&y);
    }
    match (Decimal::parse(a), Decimal::parse(b.trim())) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => {
            let (x, y) = (a.parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
            x.partial_cmp(&y)
        }
    }
}

/// An exact decimal number: sign, integer digits without leading zeros, fraction digits
/// without trailing zeros.
#[derive(PartialEq, Eq)]
struct Decimal {
    negative: bool,
    int: String,
    frac: String,
}

impl Decimal {
    fn parse(s: &str) -> Option<Self> {
        let (negative, digits) = match s.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (i, f) = digits.split_once('.').unwrap_or((digits, ""));
        if (i.is_empty() && f.is_empty())
            || !i.bytes().all(|b| b.is_ascii_digit())
            || !f.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let int = i.trim_start_matches('0').to_owned();
        let frac = f.trim_end_matches('0').to_owned();
        let zero = int.is_empty() && frac.is_empty();
        Some(Self {
            negative: negative && !zero,
            int,
            frac,
        })
    }

    fn cmp_magnitude(&self, o: &Self) -> Ordering {
        self.int
            .len()
            .cmp(&o.int.len())
            .then_with(|| self.int.cmp(&o.int))
            .then_with(|| self.frac.cmp(&o.frac))
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Decimal {
    fn cmp(&self, o: &Self) -> Ordering {
        match (self.negative, o.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.cmp_magnitude(o),
            (true, true) => o.cmp_magnitude(self),
        }
    }
}

/// SQL LIKE: `%` any run, `_` one character, `\` escapes the next; ASCII case-insensitive.
#[must_use]
pub fn like(text: &str, pattern: &str) -> bool {
    #[derive(Clone, Copy, PartialEq)]
    enum P {
        Any,
        One,
        Char(char),
    }
    let mut pat = Vec::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        pat.push(match c {
            '%' => P::Any,
            '_' => P::One,
            '\\' => P::Char(it.next().unwrap_or('\\')),
            c => P::Char(c),
        });
    }
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with backtracking to the last `%` (linear in practice, no recursion).
    let (mut ti, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match pat.get(pi) {
            Some(P::Any) => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(P::One) => {
                ti += 1;
                pi += 1;
            }
            Some(P::Char(c)) if c.eq_ignore_ascii_case(&t[ti]) => {
                ti += 1;
                pi += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[pi..].iter().all(|p| *p == P::Any)
}

/// One field of a record, for display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDetail {
    /// The column name.
    pub name: String,
    /// The SQL-like type name (`int unsigned`, `varchar(20)`).
    pub type_name: String,
    /// The MySQL type code.
    pub type_code: u8,
    /// The character set, for string columns.
    pub charset: Option<&'static str>,
    /// The pre-image value.
    pub before: Cell,
    /// The post-image value.
    pub after: Cell,
    /// An UPDATE changed it.
    pub changed: bool,
    /// Part of the primary key.
    pub primary_key: bool,
}

/// A value in a [`FieldDetail`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    /// The record has no such image (INSERT before, DELETE after).
    NoImage,
    /// The column is not in the image (MINIMAL/NOBLOB row images).
    Missing,
    /// NULL.
    Null,
    /// A value as text.
    Text(String),
}

impl std::fmt::Display for Cell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoImage => Ok(()),
            Self::Missing => f.write_str("(not in the image)"),
            Self::Null => f.write_str("NULL"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// The fields of a row record with both images and what an UPDATE changed (empty for DDL and
/// markers).
#[must_use]
pub fn field_details(rec: &ChangeRecord) -> Vec<FieldDetail> {
    let Some(t) = rec.table.as_deref() else {
        return Vec::new();
    };
    let cell = |img: Option<&Vec<Value>>, i: usize, f: &Field| match img {
        None => Cell::NoImage,
        Some(vals) => match vals.get(i) {
            None | Some(Value::Missing) => Cell::Missing,
            Some(v) => value_text(v, f).map_or(Cell::Null, |s| Cell::Text(s.into_owned())),
        },
    };
    t.fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let before = cell(rec.before.as_ref(), i, f);
            let after = cell(rec.after.as_ref(), i, f);
            let changed = rec.op == Op::Update
                && !matches!(before, Cell::Missing)
                && !matches!(after, Cell::Missing)
                && before != after;
            FieldDetail {
                name: f.name.clone(),
                type_name: f.type_name.clone(),
                type_code: f.type_code,
                charset: f.charset,
                before,
                after,
                changed,
                primary_key: f.primary_key,
            }
        })
        .collect()
}

/// `col:value` of the primary key (post-image, or pre-image for DELETE), `,`-separated; empty
/// when the table has no primary key or the record no row.
#[must_use]
pub fn primary_key_text(rec: &ChangeRecord) -> String {
    let Some(t) = rec.table.as_deref() else {
        return String::new();
    };
    let img = if rec.op == Op::Delete {
        rec.before.as_ref()
    } else {
        rec.after.as_ref().or(rec.before.as_ref())
    };
    let Some(vals) = img else {
        return String::new();
    };
    t.primary_key
        .iter()
        .filter_map(|&i| {
            let f = t.fields.get(i)?;
            let v = vals.get(i)?;
            let text = value_text(v, f).map_or_else(|| "NULL".to_owned(), Cow::into_owned);
            Some(format!("{}:{text}", f.name))
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse() {
        let c: Condition = "price >= 10.5".parse().unwrap();
        assert_eq!(
            (c.image, c.column.as_str(), c.op),
            (Image::Either, "price", CmpOp::Ge)
        );
        assert_eq!(c.value.as_deref(), Some("10.5"));
        let c: Condition = "after.status='it''s'".parse().unwrap();
        assert_eq!((c.image, c.op), (Image::After, CmpOp::Eq));
        assert_eq!(c.value.as_deref(), Some("it's"));
        let c: Condition = "before.note is not null".parse().unwrap();
        assert_eq!(
            (c.image, c.op, c.value),
            (Image::Before, CmpOp::IsNotNull, None)
        );
        let c: Condition = "name LIKE 'a%'".parse().unwrap();
        assert_eq!(c.op, CmpOp::Like);
        let c: Condition = "x<>3".parse().unwrap();
        assert_eq!(c.op, CmpOp::Ne);
        let c: Condition = "`a.b` = 1".parse().unwrap();
        assert_eq!(c.column, "a.b");
        let c: Condition = "x = '=3'".parse().unwrap();
        assert_eq!(c.value.as_deref(), Some("=3"));
        for bad in [
            "",
            "x",
            "x ~ 3",
            "x =",
            "x IS MAYBE",
            "= 3",
            "pk ==",
            "pk == 3",
            "pk = = 3",
            "pk =< 3",
            "middle.pk = 3",
            "x = 'abc",
            "`x = 1",
        ] {
            assert!(bad.parse::<Condition>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decimals_compare_exactly() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert!(d("10.50") == d("10.5"));
        assert!(d("-0.00") == d("0"));
        assert!(d("99999999999999999999.1") < d("99999999999999999999.2"));
        assert!(d("-2") < d("-1.5"));
        assert!(d("007") == d("7"));
        assert!(Decimal::parse("1e5").is_none());
        assert!(Decimal::parse("abc").is_none());
    }

    #[test]
    fn like_patterns() {
        assert!(like("Hello", "h%"));
        assert!(like("Hello", "%LL%"));
        assert!(like("Hello", "H_llo"));
        assert!(!like("Hello", "H_lo"));
        assert!(like("100%", "100\\%"));
        assert!(!like("1000", "100\\%"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
        assert!(like("abcabc", "%abc"));
        assert!(like("mississippi", "m%iss%pi"));
    }

    #[test]
    fn change_types() {
        let t: ChangeTypes = "insert,DDL".parse().unwrap();
        assert!(t.insert && t.ddl && !t.update && !t.delete);
        assert!("upsert".parse::<ChangeTypes>().is_err());
    }
}
