//! The stored record encoding round-trips every record of the corpus exactly, and is compact.

use std::path::{Path, PathBuf};

use changetrack::record::codec::{self, MemoryDictionary};
use changetrack::{BinlogOptions, BinlogReader};

fn corpus_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            corpus_files(&p, out);
        } else {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if ![".txt", ".tsv", ".sql", ".md", ".sh"]
                .iter()
                .any(|s| name.ends_with(s))
            {
                out.push(p);
            }
        }
    }
}

#[test]
fn every_corpus_record_round_trips() {
    let mut files = Vec::new();
    corpus_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/binlogs"),
        &mut files,
    );
    let mut dict = MemoryDictionary::default();
    let mut writer = changetrack::record::avro::AvroWriter::new();
    let mut cache = codec::DecodeCache::default();
    let (mut n, mut stored, mut binlog, mut avro) = (0u64, 0u64, 0u64, 0u64);
    for f in files {
        let mut reader =
            BinlogReader::open(std::slice::from_ref(&f), BinlogOptions::default()).unwrap();
        for (i, rec) in (&mut reader).filter_map(Result::ok).enumerate() {
            let mut rec = rec;
            rec.seq = i as u64 + 1;
            let mut buf = Vec::new();
            codec::encode(&mut buf, &rec, &mut dict);
            let shared = bytes::Bytes::from(buf.clone());
            let back = codec::decode(&buf, &shared, rec.seq, &dict).unwrap();
            assert_eq!(back, rec, "{}", f.display());
            // Decoding without a shared buffer gives the same record.
            assert_eq!(
                codec::decode(&buf, &bytes::Bytes::new(), rec.seq, &dict).unwrap(),
                rec
            );
            // Every truncation is an error, not a panic.
            if n % 97 == 0 {
                for cut in (0..buf.len()).step_by(buf.len() / 256 + 1) {
                    assert!(codec::decode(&buf[..cut], &bytes::Bytes::new(), 1, &dict).is_err());
                }
            }
            // DTS Avro written straight from the stored bytes is the Avro of the decoded record.
            let want = changetrack::record::avro::to_avro(&rec);
            let mut got = b"prefix".to_vec();
            let head = writer
                .write_from_stored(&mut got, &buf, rec.seq, &dict, &mut cache)
                .unwrap();
            assert!(
                got[6..] == want[..] && got.starts_with(b"prefix"),
                "{} record {}: Avro from the stored bytes differs",
                f.display(),
                rec.seq
            );
            assert_eq!(
                head,
                changetrack::ChangeRecord {
                    before: None,
                    after: None,
                    ..rec.clone()
                }
            );
            // A damaged record fails exactly as decoding it fails, and never panics.
            if n % 13 == 0 {
                for i in (0..buf.len()).step_by(buf.len() / 64 + 1) {
                    let mut bad = buf.clone();
                    bad[i] ^= 0x5a;
                    let mut out = Vec::new();
                    let direct = writer.write_from_stored(
                        &mut out,
                        &bad,
                        rec.seq,
                        &dict,
                        &mut codec::DecodeCache::default(),
                    );
                    match codec::decode(&bad, &bytes::Bytes::new(), rec.seq, &dict) {
                        Ok(r) => {
                            assert!(direct.is_ok(), "byte {i}: decodes but Avro fails");
                            assert!(out == changetrack::record::avro::to_avro(&r), "byte {i}");
                        }
                        Err(_) => assert!(direct.is_err() && out.is_empty(), "byte {i}"),
                    }
                }
            }
            if n % 97 == 0 {
                for cut in (0..buf.len()).step_by(buf.len() / 256 + 1) {
                    let mut out = b"kept".to_vec();
                    let r = writer.write_from_stored(
                        &mut out,
                        &buf[..cut],
                        1,
                        &dict,
                        &mut codec::DecodeCache::default(),
                    );
                    assert!(r.is_err() && out == b"kept", "cut at {cut}");
                }
            }
            stored += buf.len() as u64;
            avro += want.len() as u64;
            n += 1;
        }
        binlog += reader.stats().bytes;
    }
    assert!(n > 50_000, "{n} records");
    // The stored form is smaller than the binlog it came from.
    assert!(
        stored < binlog,
        "stored {stored} bytes for {binlog} binlog bytes"
    );
    // Storing the DTS Avro instead would take much more room (see docs/DESIGN.md).
    eprintln!("{n} records: codec {stored} bytes, avro {avro} bytes, binlog {binlog} bytes");
    assert!(stored * 2 < avro, "codec {stored} vs avro {avro}");
}
