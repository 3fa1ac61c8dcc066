//! What is tracked: databases and tables, and the data types DML and DDL.

use std::collections::BTreeSet;

use crate::error::{Error, Result};
use crate::record::{ChangeRecord, Op};

/// Tracked objects and data types. The default tracks everything.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// Whole databases (every table in them, including tables created later).
    pub databases: BTreeSet<String>,
    /// Single tables, as (database, table).
    pub tables: BTreeSet<(String, String)>,
    /// Track row changes (INSERT, UPDATE, DELETE).
    pub dml: bool,
    /// Track schema changes (DDL).
    pub ddl: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            databases: BTreeSet::new(),
            tables: BTreeSet::new(),
            dml: true,
            ddl: true,
        }
    }
}

impl Filter {
    /// Tracks the databases in `list` (comma-separated).
    ///
    /// # Errors
    /// `InvalidArgument` for an empty name.
    pub fn with_databases(mut self, list: &str) -> Result<Self> {
        for d in list.split(',').map(str::trim) {
            if d.is_empty() {
                return Err(Error::invalid("empty database name in --databases"));
            }
            self.databases.insert(d.to_owned());
        }
        Ok(self)
    }

    /// Tracks the tables in `list` (comma-separated `db.table`).
    ///
    /// # Errors
    /// `InvalidArgument` for an entry that is not `db.table`.
    pub fn with_tables(mut self, list: &str) -> Result<Self> {
        for t in list.split(',').map(str::trim) {
            let (d, t) = t
                .split_once('.')
                .filter(|(d, t)| !d.is_empty() && !t.is_empty())
                .ok_or_else(|| Error::invalid(format!("{t:?} is not db.table")))?;
            self.tables.insert((d.to_owned(), t.to_owned()));
        }
        Ok(self)
    }

    /// Tracks only the data types in `list` (comma-separated `dml`, `ddl`).
    ///
    /// # Errors
    /// `InvalidArgument` for an unknown type.
    pub fn with_types(mut self, list: &str) -> Result<Self> {
        self.dml = false;
        self.ddl = false;
        for t in list.split(',').map(str::trim) {
            match t.to_ascii_lowercase().as_str() {
                "dml" => self.dml = true,
                "ddl" => self.ddl = true,
                other => {
                    return Err(Error::invalid(format!(
                        "unknown data type {other:?}: use dml, ddl"
                    )))
                }
            }
        }
        Ok(self)
    }

    fn object_tracked(&self, db: Option<&str>, table: Option<&str>) -> bool {
        if self.databases.is_empty() && self.tables.is_empty() {
            return true;
        }
        let Some(db) = db else { return false };
        if self.databases.contains(db) {
            return true;
        }
        match table {
            Some(t) => self.tables.contains(&(db.to_owned(), t.to_owned())),
            // A DDL statement without a table (CREATE DATABASE ...) matters to tracked tables of
            // that database too.
            None => self.tables.iter().any(|(d, _)| d == db),
        }
    }

    /// Whether `rec` is tracked. BEGIN/COMMIT/HEARTBEAT markers always pass: the caller keeps
    /// them only around transactions that carry tracked records.
    #[must_use]
    pub fn matches(&self, rec: &ChangeRecord) -> bool {
        match rec.op {
            Op::Insert | Op::Update | Op::Delete => {
                self.dml && self.object_tracked(rec.database_name(), rec.table_name())
            }
            Op::Ddl => {
                if !self.ddl {
                    return false;
                }
                let stmt = rec.ddl.as_ref().map_or("", |d| d.statement.as_str());
                let (db, table) = ddl_object(stmt);
                let db = db.or_else(|| rec.database_name().map(str::to_owned));
                self.object_tracked(db.as_deref(), table.as_deref())
            }
            Op::Begin | Op::Commit | Op::Heartbeat => true,
        }
    }
}

fn unquote(s: &str) -> String {
    s.trim_matches('`').replace("``", "`")
}

/// The object a DDL statement names: `(database, table)` when it says `db.table`, `(None,
/// table)` for a bare table name, `(db, None)` for CREATE/DROP/ALTER DATABASE.
#[must_use]
pub fn ddl_object(statement: &str) -> (Option<String>, Option<String>) {
    let words: Vec<&str> = statement.split_whitespace().take(12).collect();
    let upper: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
    let mut i = 0;
    // CREATE [OR REPLACE] [TEMPORARY] TABLE, ALTER [ONLINE|IGNORE] TABLE, DROP [TEMPORARY] TABLE,
    // TRUNCATE [TABLE], RENAME TABLE, CREATE|DROP|ALTER DATABASE|SCHEMA.
    while i < upper.len() && !matches!(upper[i].as_str(), "TABLE" | "DATABASE" | "SCHEMA") {
        if upper[0] == "TRUNCATE" && i == 0 && upper.get(1).map(String::as_str) != Some("TABLE") {
            break;
        }
        i += 1;
    }
    let is_db = matches!(
        upper.get(i).map(String::as_str),
        Some("DATABASE" | "SCHEMA")
    );
    let mut j = i + 1;
    while j < upper.len() && matches!(upper[j].as_str(), "IF" | "NOT" | "EXISTS") {
        j += 1;
    }
    let Some(name) = words.get(j) else {
        return (None, None);
    };
    let name = name.trim_end_matches([';', '(']);
    if is_db {
        return (Some(unquote(name)), None);
    }
    match name.split_once('.') {
        Some((d, t)) if !d.is_empty() && !t.is_empty() => (Some(unquote(d)), Some(unquote(t))),
        _ => (None, Some(unquote(name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddl_objects() {
        assert_eq!(
            ddl_object("CREATE TABLE bench.orders (id int)"),
            (Some("bench".into()), Some("orders".into()))
        );
        assert_eq!(
            ddl_object("ALTER TABLE `t_x` ADD c INT"),
            (None, Some("t_x".into()))
        );
        assert_eq!(
            ddl_object("DROP TABLE IF EXISTS `db`.`t`"),
            (Some("db".into()), Some("t".into()))
        );
        assert_eq!(
            ddl_object("CREATE DATABASE corpus"),
            (Some("corpus".into()), None)
        );
        assert_eq!(
            ddl_object("TRUNCATE t_trunc"),
            (None, Some("t_trunc".into()))
        );
    }

    #[test]
    fn parsing() {
        let f = Filter::default()
            .with_tables("a.b,c.d")
            .unwrap()
            .with_types("ddl")
            .unwrap();
        assert!(f.tables.contains(&("c".into(), "d".into())));
        assert!(!f.dml && f.ddl);
        assert!(Filter::default().with_tables("nodot").is_err());
        assert!(Filter::default().with_types("dcl").is_err());
    }
}
