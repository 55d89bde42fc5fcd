//! Properties over arbitrary input: the parser never panics, and the receiver's storage
//! stays bounded whatever arrives.

use proptest::prelude::*;

use daemonlab::syslog::parse::parse;
use daemonlab::syslog::receiver::{Receiver, ReceiverOptions, Source};

/// Bytes that look a little like syslog often enough to reach the deeper branches.
fn datagram() -> impl Strategy<Value = Vec<u8>> {
    let pieces = prop_oneof![
        Just(b"<".to_vec()),
        Just(b">".to_vec()),
        Just(b"<13>".to_vec()),
        Just(b"<191>".to_vec()),
        Just(b"1 ".to_vec()),
        Just(b"Nov  5 09:04:01 ".to_vec()),
        Just(b"2025-11-05T09:04:01Z ".to_vec()),
        Just(b"- ".to_vec()),
        Just(b"[id@1 k=\"v\"] ".to_vec()),
        Just(b"ident[42]: ".to_vec()),
        Just(b"host ".to_vec()),
        Just(b":".to_vec()),
        Just(b"\0".to_vec()),
        Just(b"\n".to_vec()),
        Just(vec![0xef, 0xbb, 0xbf]),
        Just(vec![0xff]),
        proptest::collection::vec(any::<u8>(), 0..8),
    ];
    proptest::collection::vec(pieces, 0..12).prop_map(|p| p.concat())
}

proptest! {
    #[test]
    fn parse_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let p = parse(&bytes);
        prop_assert_eq!(p.malformed, p.pri.is_none() || p.format == daemonlab::syslog::parse::WireFormat::Malformed);
    }

    #[test]
    fn parse_never_panics_on_syslog_like_bytes(bytes in datagram()) {
        let p = parse(&bytes);
        if let Some(pri) = p.pri {
            prop_assert!(pri <= 191);
            prop_assert_eq!(p.severity.map(|s| s as u8), Some(pri % 8));
        }
        prop_assert!(!p.message.ends_with('\0') && !p.message.ends_with('\n'));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn receiver_storage_stays_bounded(
        datagrams in proptest::collection::vec(datagram(), 0..200),
        capacity in 1usize..20,
        max_bytes in 0usize..20_000,
        fold in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let receiver = Receiver::with_options(
            &dir.path().join("log"),
            ReceiverOptions { capacity, max_bytes, fold, ..ReceiverOptions::default() },
        ).unwrap();
        for d in &datagrams {
            receiver.inject(Source::Unix, Some(1), d);
            prop_assert!(receiver.messages().len() <= capacity);
        }
        receiver.flush();
        let kept = receiver.messages();
        let counters = receiver.counters();
        prop_assert!(!kept.is_empty() || datagrams.is_empty());
        prop_assert!(kept.len() <= capacity);
        prop_assert_eq!(counters.received, datagrams.len() as u64);
        prop_assert!(kept.windows(2).all(|w| w[0].seq < w[1].seq), "seq increases");
        if !fold {
            prop_assert_eq!(counters.folded, 0);
            prop_assert_eq!(kept.len() as u64 + counters.evicted, counters.received);
        } else {
            let stored = kept.len() as u64 + counters.evicted;
            prop_assert!(stored + counters.folded >= counters.received);
            if counters.evicted == 0 {
                // After flush, every absorbed repeat is in exactly one "repeated" entry.
                let reported: u64 = kept.iter().map(|m| u64::from(m.repeats)).sum();
                prop_assert_eq!(reported, counters.folded);
            }
        }
    }
}
