//! The endpoint's own wire code against the `kafka-protocol` crate as an oracle: every
//! advertised request version encoded by the crate's client side decodes to the same fields
//! with our bounded decoder, and record batches written by us decode with the crate's
//! RecordBatch reader (CRC-32C checked) to the records we wrote.

use bytes::{Bytes, BytesMut};
use changetrack_kafka::wire::{decode_frame, ApiKey, Incoming, Phase, Request};
use changetrack_kafka::BatchWriter;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::RecordBatchDecoder;

fn frame<R: Encodable>(key: ApiKey, version: i16, body: &R) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("golden")));
    let mut b = BytesMut::new();
    let hv = if key == ApiKey::ApiVersions && version >= 3 {
        2
    } else {
        1
    };
    header.encode(&mut b, hv).unwrap();
    body.encode(&mut b, version).unwrap();
    b.to_vec()
}

fn decode(f: &[u8]) -> Request {
    match decode_frame(f, Phase::Authenticated).unwrap() {
        Incoming::Request(h, r) => {
            assert_eq!(h.correlation_id, 42);
            assert_eq!(h.client_id.as_deref(), Some("golden"));
            r
        }
        other => panic!("{other:?}"),
    }
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

#[test]
fn every_advertised_request_version_decodes_like_the_reference() {
    for v in 0..=3 {
        let r = ApiVersionsRequest::default()
            .with_client_software_name(s("golden"))
            .with_client_software_version(s("1"));
        assert_eq!(
            decode(&frame(ApiKey::ApiVersions, v, &r)),
            Request::ApiVersions
        );
    }
    for v in 0..=1 {
        let r = SaslHandshakeRequest::default().with_mechanism(s("PLAIN"));
        assert_eq!(
            decode(&frame(ApiKey::SaslHandshake, v, &r)),
            Request::SaslHandshake {
                mechanism: "PLAIN".into()
            }
        );
    }
    let r = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from_static(b"\0u-g\0p"));
    assert_eq!(
        decode(&frame(ApiKey::SaslAuthenticate, 0, &r)),
        Request::SaslAuthenticate {
            auth_bytes: b"\0u-g\0p".to_vec()
        }
    );
    for v in 0..=4 {
        let r =
            MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(TopicName(s("cdc"))))]));
        assert_eq!(
            decode(&frame(ApiKey::Metadata, v, &r)),
            Request::Metadata {
                topics: Some(vec!["cdc".into()])
            }
        );
        if v >= 1 {
            let all = MetadataRequest::default().with_topics(None);
            assert_eq!(
                decode(&frame(ApiKey::Metadata, v, &all)),
                Request::Metadata { topics: None }
            );
        }
    }
    for v in 0..=1 {
        let r = FindCoordinatorRequest::default().with_key(s("ctg-x"));
        assert_eq!(
            decode(&frame(ApiKey::FindCoordinator, v, &r)),
            Request::FindCoordinator {
                key: "ctg-x".into(),
                key_type: 0
            }
        );
    }
    for v in 1..=2 {
        let r = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(TopicName(s("cdc")))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(1_700_000_000_000),
                ])]);
        assert_eq!(
            decode(&frame(ApiKey::ListOffsets, v, &r)),
            Request::ListOffsets {
                topics: vec![("cdc".into(), vec![(0, 1_700_000_000_000)])]
            }
        );
    }
    for v in 4..=5 {
        let r = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(52_428_800)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(TopicName(s("cdc")))
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(77)
                    .with_partition_max_bytes(1_048_576)])]);
        assert_eq!(
            decode(&frame(ApiKey::Fetch, v, &r)),
            Request::Fetch {
                max_wait_ms: 500,
                min_bytes: 1,
                max_bytes: 52_428_800,
                topics: vec![(
                    "cdc".into(),
                    vec![changetrack_kafka::wire::FetchPartition {
                        partition: 0,
                        fetch_offset: 77,
                        partition_max_bytes: 1_048_576
                    }]
                )]
            }
        );
    }
    for v in 2..=3 {
        let r = OffsetCommitRequest::default()
            .with_group_id(GroupId(s("ctg-x")))
            .with_generation_id_or_member_epoch(-1)
            .with_member_id(s(""))
            .with_retention_time_ms(-1)
            .with_topics(vec![
                offset_commit_request::OffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("cdc")))
                    .with_partitions(vec![
                        offset_commit_request::OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(99)
                            .with_committed_metadata(Some(s("1700000000|x\0"))),
                    ]),
            ]);
        assert_eq!(
            decode(&frame(ApiKey::OffsetCommit, v, &r)),
            Request::OffsetCommit {
                group_id: "ctg-x".into(),
                generation_id: -1,
                member_id: String::new(),
                topics: vec![(
                    "cdc".into(),
                    vec![(0, 99, Some(b"1700000000|x\0".to_vec()))]
                )]
            }
        );
    }
    for v in 1..=3 {
        let r = OffsetFetchRequest::default()
            .with_group_id(GroupId(s("ctg-x")))
            .with_topics(Some(vec![
                offset_fetch_request::OffsetFetchRequestTopic::default()
                    .with_name(TopicName(s("cdc")))
                    .with_partition_indexes(vec![0]),
            ]));
        assert_eq!(
            decode(&frame(ApiKey::OffsetFetch, v, &r)),
            Request::OffsetFetch {
                group_id: "ctg-x".into(),
                topics: Some(vec![("cdc".into(), vec![0])])
            }
        );
    }
    for v in 0..=2 {
        let r = JoinGroupRequest::default()
            .with_group_id(GroupId(s("ctg-x")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(if v >= 1 { 300_000 } else { -1 })
            .with_member_id(s(""))
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"\0\x01meta"))]);
        assert_eq!(
            decode(&frame(ApiKey::JoinGroup, v, &r)),
            Request::JoinGroup {
                group_id: "ctg-x".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: if v >= 1 { 300_000 } else { 10_000 },
                member_id: String::new(),
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), b"\0\x01meta".to_vec())]
            }
        );
    }
    for v in 0..=1 {
        let r = SyncGroupRequest::default()
            .with_group_id(GroupId(s("ctg-x")))
            .with_generation_id(3)
            .with_member_id(s("m1"))
            .with_assignments(vec![
                sync_group_request::SyncGroupRequestAssignment::default()
                    .with_member_id(s("m1"))
                    .with_assignment(Bytes::from_static(b"asg")),
            ]);
        assert_eq!(
            decode(&frame(ApiKey::SyncGroup, v, &r)),
            Request::SyncGroup {
                group_id: "ctg-x".into(),
                generation_id: 3,
                member_id: "m1".into(),
                assignments: vec![("m1".into(), b"asg".to_vec())]
            }
        );
        let r = HeartbeatRequest::default()
            .with_group_id(GroupId(s("ctg-x")))
            .with_generation_id(3)
            .with_member_id(s("m1"));
        assert_eq!(
            decode(&frame(ApiKey::Heartbeat, v, &r)),
            Request::Heartbeat {
                group_id: "ctg-x".into(),
                generation_id: 3,
                member_id: "m1".into()
            }
        );
        let r = LeaveGroupRequest::default()
            .with_group_id(GroupId(s("ctg-x")))
            .with_member_id(s("m1"));
        assert_eq!(
            decode(&frame(ApiKey::LeaveGroup, v, &r)),
            Request::LeaveGroup {
                group_id: "ctg-x".into(),
                member_id: "m1".into()
            }
        );
    }
}

#[test]
fn our_record_batches_decode_with_the_reference_reader() {
    let mut out = Vec::new();
    let values: Vec<Vec<u8>> = (0..300u32)
        .map(|i| (0..(i * 37 % 900)).map(|b| (b ^ i) as u8).collect())
        .collect();
    // Two batches back to back, the second with headers and a key.
    let mut w = BatchWriter::new(&mut out, 1, 1_700_000_000_000);
    for (i, v) in values[..200].iter().enumerate() {
        w.push(
            1 + i as i64,
            1_700_000_000_000 + (i as i64 / 20) * 1000,
            None,
            Some(v),
            &[],
        );
    }
    w.finish();
    let mut w = BatchWriter::new(&mut out, 201, 1_700_000_010_000);
    for (i, v) in values[200..].iter().enumerate() {
        w.push(
            201 + i as i64,
            1_700_000_010_000,
            Some(b"key"),
            Some(v),
            &[("seq", b"x"), ("op", b"INSERT")],
        );
    }
    w.finish();
    let mut buf = Bytes::from(out);
    let sets = RecordBatchDecoder::decode_all(&mut buf).unwrap();
    let recs: Vec<_> = sets.into_iter().flat_map(|s| s.records).collect();
    assert_eq!(recs.len(), 300);
    for (i, r) in recs.iter().enumerate() {
        assert_eq!(r.offset, 1 + i as i64);
        assert_eq!(r.value.as_deref(), Some(&values[i][..]));
        if i < 200 {
            assert_eq!(r.timestamp, 1_700_000_000_000 + (i as i64 / 20) * 1000);
            assert!(r.key.is_none() && r.headers.is_empty());
        } else {
            assert_eq!(r.key.as_deref(), Some(&b"key"[..]));
            assert_eq!(r.headers.len(), 2);
            assert_eq!(
                r.headers
                    .get(&StrBytes::from_static_str("op"))
                    .unwrap()
                    .as_deref(),
                Some(&b"INSERT"[..])
            );
        }
    }
}
