//! What is tracked: databases and tables, and the data types DML and DDL.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::record::{ChangeRecord, Op};

/// Tracked objects and data types. The default tracks everything.
///
/// A table is tracked when it is selected by name, or when it is not excluded and its database
/// is tracked (every database when `all`, else the selected ones). Selecting a database tracks
/// its tables created later too.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    /// Every database is tracked (except the excluded ones).
    #[serde(default)]
    pub all: bool,
    /// Whole databases (every table in them, including tables created later).
    pub databases: BTreeSet<String>,
    /// Single tables, as (database, table).
    pub tables: BTreeSet<(String, String)>,
    /// Databases not tracked even when `all` is set.
    #[serde(default)]
    pub exclude_databases: BTreeSet<String>,
    /// Tables not tracked even when their database is.
    #[serde(default)]
    pub exclude_tables: BTreeSet<(String, String)>,
    /// Track row changes (INSERT, UPDATE, DELETE).
    pub dml: bool,
    /// Track schema changes (DDL).
    pub ddl: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Self {
            all: true,
            databases: BTreeSet::new(),
            tables: BTreeSet::new(),
            exclude_databases: BTreeSet::new(),
            exclude_tables: BTreeSet::new(),
            dml: true,
            ddl: true,
        }
    }
}

/// Whether an [`ObjectChange`] adds or removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectAction {
    /// Start tracking.
    Add,
    /// Stop tracking.
    Remove,
}

/// A change of what is tracked, made while ingestion runs (see `changetrack objects`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectChange {
    /// Add or remove.
    pub action: ObjectAction,
    /// Databases.
    #[serde(default)]
    pub databases: Vec<String>,
    /// Tables, as (database, table).
    #[serde(default)]
    pub tables: Vec<(String, String)>,
    /// The data type DML (turned on by Add, off by Remove).
    #[serde(default)]
    pub dml: bool,
    /// The data type DDL (turned on by Add, off by Remove).
    #[serde(default)]
    pub ddl: bool,
}

impl ObjectChange {
    /// A change from comma-separated lists, as the CLI takes them.
    ///
    /// # Errors
    /// `InvalidArgument` for a malformed name or type, or a change that names nothing.
    pub fn parse(
        action: ObjectAction,
        databases: Option<&str>,
        tables: Option<&str>,
        types: Option<&str>,
    ) -> Result<Self> {
        let mut f = Filter {
            all: false,
            dml: false,
            ddl: false,
            ..Filter::default()
        };
        if let Some(d) = databases {
            f = f.with_databases(d)?;
        }
        if let Some(t) = tables {
            f = f.with_tables(t)?;
        }
        if let Some(t) = types {
            f = f.with_types(t)?;
        }
        let c = Self {
            action,
            databases: f.databases.into_iter().collect(),
            tables: f.tables.into_iter().collect(),
            dml: f.dml,
            ddl: f.ddl,
        };
        if c.databases.is_empty() && c.tables.is_empty() && !c.dml && !c.ddl {
            return Err(Error::invalid(
                "name databases, tables or types (dml, ddl) to add or remove",
            ));
        }
        Ok(c)
    }
}

impl Filter {
    /// Tracks the databases in `list` (comma-separated).
    ///
    /// # Errors
    /// `InvalidArgument` for an empty name.
    pub fn with_databases(mut self, list: &str) -> Result<Self> {
        self.all = false;
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
        self.all = false;
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
        let Some(db) = db else {
            // A statement naming no database (no default database either).
            return self.all;
        };
        if let Some(t) = table {
            let key = (db.to_owned(), t.to_owned());
            if self.tables.contains(&key) {
                return true;
            }
            if self.exclude_tables.contains(&key) {
                return false;
            }
        }
        if self.exclude_databases.contains(db) {
            return false;
        }
        if self.all || self.databases.contains(db) {
            return true;
        }
        // A DDL statement without a table (CREATE DATABASE ...) matters to tracked tables of
        // that database too.
        table.is_none() && self.tables.iter().any(|(d, _)| d == db)
    }

    /// Applies a change of what is tracked.
    pub fn apply(&mut self, change: &ObjectChange) {
        match change.action {
            ObjectAction::Add => {
                for d in &change.databases {
                    if !self.all {
                        self.databases.insert(d.clone());
                    }
                    self.exclude_databases.remove(d);
                    self.exclude_tables.retain(|(x, _)| x != d);
                }
                for t in &change.tables {
                    self.tables.insert(t.clone());
                    self.exclude_tables.remove(t);
                }
                self.dml |= change.dml;
                self.ddl |= change.ddl;
            }
            ObjectAction::Remove => {
                for d in &change.databases {
                    self.databases.remove(d);
                    self.tables.retain(|(x, _)| x != d);
                    self.exclude_tables.retain(|(x, _)| x != d);
                    if self.all {
                        self.exclude_databases.insert(d.clone());
                    }
                }
                for t in &change.tables {
                    self.tables.remove(t);
                    if (self.all && !self.exclude_databases.contains(&t.0))
                        || self.databases.contains(&t.0)
                    {
                        self.exclude_tables.insert(t.clone());
                    }
                }
                if change.dml {
                    self.dml = false;
                }
                if change.ddl {
                    self.ddl = false;
                }
            }
        }
    }

    /// A one-line description (`all databases except x; tables a.b; types dml,ddl`).
    #[must_use]
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.all {
            parts.push("all databases".to_owned());
        }
        if !self.databases.is_empty() {
            parts.push(format!(
                "databases {}",
                self.databases.iter().cloned().collect::<Vec<_>>().join(",")
            ));
        }
        let join = |s: &BTreeSet<(String, String)>| {
            s.iter()
                .map(|(d, t)| format!("{d}.{t}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        if !self.tables.is_empty() {
            parts.push(format!("tables {}", join(&self.tables)));
        }
        if !self.exclude_databases.is_empty() {
            parts.push(format!(
                "except databases {}",
                self.exclude_databases
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(",")
            ));
        }
        if !self.exclude_tables.is_empty() {
            parts.push(format!("except tables {}", join(&self.exclude_tables)));
        }
        if parts.is_empty() {
            parts.push("no objects".to_owned());
        }
        let types = match (self.dml, self.ddl) {
            (true, true) => "dml,ddl",
            (true, false) => "dml",
            (false, true) => "ddl",
            (false, false) => "none",
        };
        format!("{}; types {types}", parts.join("; "))
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

    fn tracked(f: &Filter, db: &str, t: &str) -> bool {
        f.object_tracked(Some(db), Some(t))
    }

    #[test]
    fn changes() {
        let add = |d: Option<&str>, t: Option<&str>| {
            ObjectChange::parse(ObjectAction::Add, d, t, None).unwrap()
        };
        let rm = |d: Option<&str>, t: Option<&str>| {
            ObjectChange::parse(ObjectAction::Remove, d, t, None).unwrap()
        };
        // Everything, minus a table, minus a database, then the database back.
        let mut f = Filter::default();
        f.apply(&rm(None, Some("a.x")));
        assert!(!tracked(&f, "a", "x") && tracked(&f, "a", "y") && tracked(&f, "b", "z"));
        f.apply(&rm(Some("b"), None));
        assert!(!tracked(&f, "b", "z") && tracked(&f, "c", "new_table"));
        f.apply(&add(Some("b"), None));
        assert!(tracked(&f, "b", "z"));
        f.apply(&add(None, Some("a.x")));
        assert!(tracked(&f, "a", "x"));
        // A selection: removing its last database tracks nothing (not everything).
        let mut f = Filter::default().with_databases("a").unwrap();
        assert!(tracked(&f, "a", "later") && !tracked(&f, "b", "t"));
        f.apply(&rm(None, Some("a.t")));
        assert!(!tracked(&f, "a", "t") && tracked(&f, "a", "u"));
        f.apply(&rm(Some("a"), None));
        assert!(!tracked(&f, "a", "u") && !tracked(&f, "a", "t"));
        f.apply(&add(None, Some("a.t")));
        assert!(tracked(&f, "a", "t") && !tracked(&f, "a", "u"));
        // Types.
        let mut f = Filter::default();
        f.apply(&ObjectChange::parse(ObjectAction::Remove, None, None, Some("ddl")).unwrap());
        assert!(f.dml && !f.ddl);
        f.apply(&ObjectChange::parse(ObjectAction::Add, None, None, Some("ddl")).unwrap());
        assert!(f.ddl);
        assert!(ObjectChange::parse(ObjectAction::Add, None, None, None).is_err());
        // Round trip through JSON (how changes and filters are stored).
        let back: Filter = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
    }
}
