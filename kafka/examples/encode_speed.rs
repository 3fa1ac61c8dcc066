use changetrack::{ReadFrom, Store, StoreOptions};
use std::time::Instant;
fn main() {
    let p = std::env::args().nth(1).unwrap();
    let st = Store::open(
        &p,
        StoreOptions {
            read_only: true,
            ..StoreOptions::default()
        },
    )
    .unwrap();
    let t = Instant::now();
    let mut n = 0u64;
    for r in st.iter(ReadFrom::Earliest).unwrap() {
        let _ = r.unwrap();
        n += 1;
    }
    println!("iter {n} in {:?}", t.elapsed());
    let t = Instant::now();
    let mut v = Vec::new();
    let mut bytes = 0;
    let mut w = changetrack::record::avro::AvroWriter::new();
    for r in st.iter(ReadFrom::Earliest).unwrap() {
        let r = r.unwrap();
        v.clear();
        w.write(&mut v, &r);
        bytes += v.len();
    }
    println!("iter+avro {bytes} bytes in {:?}", t.elapsed());
}
