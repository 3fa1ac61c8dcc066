//! `changetrack query`, `show` and `demo`.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use changetrack::query::{field_details, primary_key_text, Cell, ChangeTypes, Condition, Query};
use changetrack::store::{DataRange, ReadFrom};
use changetrack::{
    ChangeRecord, Checkpoint, Error, ErrorKind, IngestOptions, Op, StartAt, Store, StoreOptions,
};

use super::groups::ListFormat;
use super::{open_reader, parse_time, utc, Format, Output};

/// Options of `changetrack query`.
#[derive(clap::Args)]
pub struct QueryArgs {
    /// The store directory.
    #[arg(long)]
    pub store: PathBuf,
    /// Only this database.
    #[arg(long)]
    pub database: Option<String>,
    /// Only this table (with --database, or as db.table).
    #[arg(long)]
    pub table: Option<String>,
    /// A condition 'COLUMN OP VALUE' (OP: = != <> < <= > >= LIKE; or 'COLUMN IS [NOT] NULL');
    /// prefix the column with before. or after. to pick an image. Repeat to combine (AND).
    #[arg(long = "where", value_name = "CONDITION")]
    pub conditions: Vec<String>,
    /// Change types (comma-separated): INSERT, UPDATE, DELETE, DDL. Default: all four.
    #[arg(long = "type", value_name = "TYPES")]
    pub types: Option<String>,
    /// From this time (epoch seconds or 'YYYY-MM-DD HH:MM:SS' UTC). Default: one minute
    /// before the newest record.
    #[arg(long)]
    pub from_time: Option<String>,
    /// To this time. Default: the newest record.
    #[arg(long)]
    pub to_time: Option<String>,
    /// At most this many records.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Oldest first.
    #[arg(long)]
    pub oldest_first: bool,
    /// Continue after a previous page (its `more: --cursor ...` line).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Output format. Default: table on a terminal, jsonl otherwise.
    #[arg(long, value_enum)]
    pub format: Option<ListFormat>,
}

fn build_query(a: &QueryArgs) -> Result<Query, Error> {
    Ok(Query {
        database: a.database.clone(),
        table: a.table.clone(),
        conditions: a
            .conditions
            .iter()
            .map(|c| c.parse::<Condition>())
            .collect::<Result<_, _>>()?,
        types: match &a.types {
            Some(t) => t.parse::<ChangeTypes>()?,
            None => ChangeTypes::default(),
        },
        from_time: a.from_time.as_deref().map(parse_time).transpose()?,
        to_time: a.to_time.as_deref().map(parse_time).transpose()?,
        limit: a.limit,
        oldest_first: a.oldest_first,
        cursor: a.cursor.clone(),
    })
}

fn range_line(r: Option<&DataRange>) -> String {
    match r {
        None => "data range: the store is empty".to_owned(),
        Some(r) => format!(
            "data range: {} UTC .. {} UTC (seq {}..{}, checkpoint {}..{})",
            utc(r.oldest.timestamp),
            utc(r.newest.timestamp),
            r.oldest.seq,
            r.newest.seq,
            r.oldest.checkpoint,
            r.newest.checkpoint
        ),
    }
}

/// Left-aligned columns, two spaces apart, by display width (a CJK character takes two
/// terminal cells).
pub fn aligned(rows: &[Vec<String>]) -> String {
    use unicode_width::UnicodeWidthStr;
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; n];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.width());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(c);
            let pad = widths[i].saturating_sub(c.width());
            line.extend(std::iter::repeat_n(' ', pad));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

pub fn query(a: &QueryArgs) -> Result<(), Error> {
    let st = open_reader(&a.store)?;
    let q = build_query(a)?;
    let page = st.query(&q)?;
    let format = a.format.unwrap_or(if std::io::stdout().is_terminal() {
        ListFormat::Table
    } else {
        ListFormat::Jsonl
    });
    match format {
        ListFormat::Jsonl => {
            let mut out = Output::new();
            for r in &page.records {
                out.record(Format::Jsonl, r, true)?;
            }
            out.finish()?;
            if let Some(c) = &page.next_cursor {
                eprintln!("more: --cursor {c}");
            }
        }
        ListFormat::Table => {
            let mut text = String::new();
            let _ = writeln!(text, "{}", range_line(page.range.as_ref()));
            let _ = writeln!(
                text,
                "searched: {} UTC .. {} UTC, {}, at most {}\n",
                utc(page.from_time),
                utc(page.to_time),
                if q.oldest_first {
                    "oldest first"
                } else {
                    "newest first"
                },
                q.limit
            );
            let mut rows = vec![[
                "Database",
                "Table",
                "Primary Key Column:Value",
                "Change Type",
                "Checkpoint",
                "Timestamp (UTC)",
            ]
            .map(str::to_owned)
            .to_vec()];
            for r in &page.records {
                let (db, table) = object_of(r);
                let pk = primary_key_text(r);
                rows.push(vec![
                    db,
                    table,
                    if pk.is_empty() { "-".to_owned() } else { pk },
                    r.op.as_str().to_owned(),
                    r.checkpoint.to_string(),
                    utc(r.timestamp),
                ]);
            }
            text.push_str(&aligned(&rows));
            let _ = writeln!(
                text,
                "\n{} record{}{}",
                page.records.len(),
                if page.records.len() == 1 { "" } else { "s" },
                page.next_cursor
                    .as_ref()
                    .map_or_else(String::new, |c| format!("; more: --cursor {c}"))
            );
            out!("{text}");
        }
    }
    Ok(())
}

/// Database and table a record is about (DDL: the statement's object).
fn object_of(r: &ChangeRecord) -> (String, String) {
    if r.op == Op::Ddl {
        let stmt = r.ddl.as_ref().map_or("", |d| d.statement.as_str());
        let (d, t) = changetrack::filter::ddl_object(stmt);
        (
            d.or_else(|| r.database_name().map(str::to_owned))
                .unwrap_or_else(|| "-".to_owned()),
            t.unwrap_or_else(|| "-".to_owned()),
        )
    } else {
        (
            r.database_name().unwrap_or("-").to_owned(),
            r.table_name().unwrap_or("-").to_owned(),
        )
    }
}

/// The records a `show` argument names: a seq, or every record at a checkpoint.
fn records_at(st: &Store, what: &str) -> Result<Vec<ChangeRecord>, Error> {
    if what.contains('@') {
        let cp: Checkpoint = what.parse()?;
        let from = st.resolve(ReadFrom::Checkpoint(cp))?;
        let recs: Vec<ChangeRecord> = st
            .iter(ReadFrom::Seq(from))?
            .take_while(|r| r.as_ref().map_or(true, |r| r.checkpoint == cp))
            .collect::<Result<_, _>>()?;
        if recs.is_empty() {
            let range = st
                .data_range()?
                .map_or_else(|| "empty".to_owned(), |r| r.to_string());
            return Err(Error::new(
                ErrorKind::NotFound,
                format!("no record at checkpoint {cp} (data range: {range})"),
            ));
        }
        Ok(recs)
    } else {
        let seq: u64 = what.parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("{what:?} is neither a seq nor a checkpoint (OFFSET@FILE_INDEX)"),
            )
        })?;
        Ok(vec![st.get(seq)?])
    }
}

/// The details of a record as text; changed values highlighted when `color`.
pub fn render_details(r: &ChangeRecord, color: bool) -> String {
    let mut s = String::new();
    let (db, table) = object_of(r);
    let _ = writeln!(
        s,
        "seq {}  checkpoint {}  safe checkpoint {}  time {} ({} UTC)",
        r.seq,
        r.checkpoint,
        r.safe_checkpoint,
        r.timestamp,
        utc(r.timestamp)
    );
    let _ = write!(s, "{}", r.op.as_str());
    if db != "-" {
        let _ = write!(s, " {db}");
        if table != "-" {
            let _ = write!(s, ".{table}");
        }
    }
    if let Some(g) = &r.gtid {
        let _ = write!(s, "  gtid {g}");
    }
    if let Some(x) = r.xid {
        let _ = write!(s, "  xid {x}");
    }
    if let Some(t) = r.thread_id {
        let _ = write!(s, "  thread {t}");
    }
    let _ = writeln!(s, "  server {}", r.server_id);
    if let Some(ddl) = &r.ddl {
        let _ = writeln!(s, "statement: {}", ddl.statement);
        let _ = writeln!(s, "session:   {}", ddl.session);
        return s;
    }
    let pk = primary_key_text(r);
    if !pk.is_empty() {
        let _ = writeln!(s, "primary key: {pk}");
    }
    let details = field_details(r);
    if details.is_empty() {
        return s;
    }
    let mut rows = vec![["", "Field", "Type", "Code", "Charset", "Before", "After"]
        .map(str::to_owned)
        .to_vec()];
    for f in &details {
        rows.push(vec![
            if f.changed { "*" } else { "" }.to_owned(),
            f.name.clone(),
            f.type_name.clone(),
            f.type_code.to_string(),
            f.charset.unwrap_or("-").to_owned(),
            printable(&f.before),
            printable(&f.after),
        ]);
    }
    let table = aligned(&rows);
    for (line, f) in table
        .lines()
        .zip(std::iter::once(None).chain(details.iter().map(Some)))
    {
        if color && f.is_some_and(|f| f.changed) {
            let _ = writeln!(s, "\x1b[1;33m{line}\x1b[0m");
        } else {
            let _ = writeln!(s, "{line}");
        }
    }
    if r.op == Op::Update {
        let n = details.iter().filter(|f| f.changed).count();
        let _ = writeln!(s, "{n} field{} changed (*)", if n == 1 { "" } else { "s" });
    }
    s
}

/// A cell on one line: control characters escaped, long values shortened.
fn printable(c: &Cell) -> String {
    let t = c.to_string();
    let mut out: String = t
        .chars()
        .flat_map(|ch| {
            if ch.is_control() {
                ch.escape_default().collect::<Vec<_>>()
            } else {
                vec![ch]
            }
        })
        .take(80)
        .collect();
    if t.chars().count() > 80 {
        out.push('…');
    }
    out
}

pub fn show(store: &Path, what: &str) -> Result<(), Error> {
    let st = open_reader(&store.to_path_buf())?;
    let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let recs = records_at(&st, what)?;
    let mut out = String::new();
    for (i, r) in recs.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&render_details(r, color));
    }
    out!("{out}");
    Ok(())
}

/// The binlogs the demo ingests (written by a real MariaDB 10.11; see tests/data/binlogs).
const DEMO_BINLOGS: [(&str, &[u8]); 3] = [
    (
        "mariadb-bin.000001",
        include_bytes!("../tests/data/binlogs/mariadb-10.11/row-metadata-full/mariadb-bin.000001"),
    ),
    (
        "mariadb-bin.000002",
        include_bytes!("../tests/data/binlogs/mariadb-10.11/row-metadata-full/mariadb-bin.000002"),
    ),
    (
        "mariadb-bin.000003",
        include_bytes!("../tests/data/binlogs/mariadb-10.11/row-metadata-full/mariadb-bin.000003"),
    ),
];

const DEMO_GROUP: &str = "demo";
const DEMO_USER: &str = "demo";
/// The demo group's password unless CHANGETRACK_PASSWORD is set.
const DEMO_PASSWORD: &str = "Demo_pass1";

pub fn demo(store: Option<PathBuf>) -> Result<(), Error> {
    let dir = store.unwrap_or_else(|| std::env::temp_dir().join("changetrack-demo"));
    outln!("== changetrack demo: store in {}", dir.display());
    // 1. Ingest the shipped binlogs (a second run resumes and adds nothing).
    let src = std::env::temp_dir().join(format!("changetrack-demo-binlogs-{}", std::process::id()));
    std::fs::create_dir_all(&src).map_err(|e| {
        Error::new(
            ErrorKind::Io,
            format!("cannot create {}: {e}", src.display()),
        )
    })?;
    for (name, bytes) in DEMO_BINLOGS {
        std::fs::write(src.join(name), bytes).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot write {}: {e}", src.display()),
            )
        })?;
    }
    let st = Store::open(&dir, StoreOptions::default())?;
    let s = changetrack::ingest(
        &st,
        std::slice::from_ref(&src),
        &IngestOptions::default(),
        None,
        &mut |_| {},
    );
    let _ = std::fs::remove_dir_all(&src);
    let s = s?;
    outln!(
        "\n== 1. ingested 3 MariaDB binlogs: {} transactions, {} new records ({} stored in all)",
        s.transactions,
        s.records,
        st.last_seq()
    );
    // 2. A consumer group.
    let groups = st.groups()?;
    let id = match groups.list()?.into_iter().find(|g| g.name == DEMO_GROUP) {
        Some(g) => g.id,
        None => groups.create(DEMO_GROUP, DEMO_USER, &demo_password())?,
    };
    outln!("\n== 2. consumer group {DEMO_GROUP:?}: id {id}, user {DEMO_USER}");
    // 3. Consume a batch and commit.
    let mut c = st.consumer(&id, DEMO_USER, &demo_password(), StartAt::Committed)?;
    let mut n = 0u64;
    let mut last = None;
    while n < 200 {
        match c.poll(std::time::Duration::ZERO)? {
            Some(r) => {
                n += 1;
                last = Some(r);
            }
            None => break,
        }
    }
    if let Some(r) = &last {
        c.commit(r)?;
        outln!(
            "\n== 3. consumed {n} records (seq {}..{}) and committed checkpoint {}",
            r.seq + 1 - n,
            r.seq,
            r.checkpoint
        );
    } else {
        outln!("\n== 3. nothing left to consume: the group committed everything already");
    }
    drop(c);
    let list = groups.status_all(&st)?;
    let mut rows = vec![["Group", "Committed Checkpoint", "Remaining", "Delay (s)"]
        .map(str::to_owned)
        .to_vec()];
    for g in list {
        rows.push(vec![
            g.info.name,
            g.committed
                .map_or_else(|| "-".to_owned(), |c| c.checkpoint.to_string()),
            g.remaining.to_string(),
            g.delay_seconds
                .map_or_else(|| "-".to_owned(), |d| d.to_string()),
        ]);
    }
    out!("{}", aligned(&rows));
    // 4. A query: the latest changes of one table.
    outln!(
        "\n== 4. changetrack query --store {} --table corpus.t_int --limit 8",
        dir.display()
    );
    let q = Query {
        table: Some("corpus.t_int".to_owned()),
        from_time: st.data_range()?.map(|r| r.oldest.timestamp),
        limit: 8,
        ..Query::default()
    };
    let page = st.query(&q)?;
    let mut rows = vec![[
        "Database",
        "Table",
        "Primary Key Column:Value",
        "Change Type",
        "Checkpoint",
        "Timestamp (UTC)",
    ]
    .map(str::to_owned)
    .to_vec()];
    for r in &page.records {
        let (db, t) = object_of(r);
        rows.push(vec![
            db,
            t,
            primary_key_text(r),
            r.op.as_str().to_owned(),
            r.checkpoint.to_string(),
            utc(r.timestamp),
        ]);
    }
    outln!("{}", range_line(page.range.as_ref()));
    out!("{}", aligned(&rows));
    // 5. The details of the newest UPDATE.
    if let Some(u) = page.records.iter().find(|r| r.op == Op::Update) {
        outln!(
            "\n== 5. changetrack show --store {} {}",
            dir.display(),
            u.seq
        );
        let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        out!("{}", render_details(u, color));
    }
    let store_arg = shell_quoted(&dir.display().to_string());
    // The password the group was created with: the demo's own, or the one in the environment
    // (which is not repeated on the screen).
    let (env, note) = if std::env::var_os("CHANGETRACK_PASSWORD").is_some() {
        (String::new(), "   # with CHANGETRACK_PASSWORD as set now")
    } else {
        (format!("CHANGETRACK_PASSWORD={DEMO_PASSWORD} "), "")
    };
    outln!(
        "\nNext:\n  changetrack query --store {store_arg}   # add --help for the options\n  \
         {env}changetrack consume --store {store_arg} --group {id} --user {DEMO_USER}{note}"
    );
    Ok(())
}

/// `s` as one word for a POSIX shell (single-quoted unless it is plainly safe).
fn shell_quoted(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%=".contains(c))
    {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn demo_password() -> String {
    std::env::var("CHANGETRACK_PASSWORD").unwrap_or_else(|_| DEMO_PASSWORD.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_by_display_width() {
        let rows = vec![
            vec!["a".to_owned(), "x".to_owned()],
            vec!["杭州市".to_owned(), "y".to_owned()],
        ];
        // 杭州市 takes six terminal cells: "a" is padded to six, then two spaces.
        assert_eq!(aligned(&rows), "a       x\n杭州市  y\n");
    }

    #[test]
    fn shell_words() {
        assert_eq!(shell_quoted("/tmp/x-1"), "/tmp/x-1");
        assert_eq!(shell_quoted("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quoted("it's"), "'it'\\''s'");
    }
}
