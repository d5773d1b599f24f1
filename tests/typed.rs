//! Typed zero-copy payloads (issue #19): `#[repr(C)]` Pod structs published
//! as their bytes by another process and read in place, on Block (in the
//! ring) and Overwrite (in the subscriber's aligned copy); a payload of
//! another size or a type that cannot be aligned is a typed error.

mod common;
use common::{Child, TestDir};
use shmq::{Options, Policy, PublishError, Topic, ValueError};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Sample {
    seq: u64,
    xyz: [f32; 3],
    flags: u32,
    name: [u8; 16],
}

fn sample(k: u64) -> Sample {
    let mut name = [0u8; 16];
    name[..8].copy_from_slice(&k.to_le_bytes());
    Sample { seq: k, xyz: [k as f32, -(k as f32), 0.5], flags: k as u32 ^ 0xA5A5, name }
}

#[test]
#[ignore = "run by the tests in this file as a child process"]
fn child() {
    let dir = std::env::var("SHMQ_TEST_DIR").expect("dir");
    let t = Topic::open("v", &Options::new().dir(dir)).expect("open");
    let mut p = t.producer().expect("producer");
    for k in 0..500 {
        if k % 2 == 0 {
            p.publish_value(&sample(k)).expect("publish_value");
        } else {
            let mut g = p.reserve_value::<Sample>().expect("reserve_value");
            *g = sample(k);
            g.commit().expect("commit");
        }
    }
    p.publish(b"not a sample").expect("publish");
    println!("DONE got=0");
}

#[test]
fn values_from_another_process_are_read_in_place_with_their_size_and_alignment_checked() {
    for policy in [Policy::Block, Policy::Overwrite] {
        let d = TestDir::new();
        let t = Topic::create("v", &d.opts().capacity(1 << 20).policy(policy)).expect("create");
        let mut s = t.subscribe().expect("subscribe");
        let mut c = Child::spawn("", &[("SHMQ_TEST_DIR", d.path().display().to_string())]);
        c.expect("DONE");
        for k in 0..500 {
            let m = s.recv_timeout(Duration::from_secs(30)).expect("message");
            let v = m.value::<Sample>().expect("a sample, aligned");
            assert_eq!(*v, sample(k), "{policy:?} {k}");
            assert_eq!(v as *const Sample as usize % 32, 0, "payloads are 32-byte aligned");
            assert_eq!(m.read_value::<Sample>(), Ok(sample(k)));
        }
        let m = s.recv_timeout(Duration::from_secs(30)).expect("the odd message");
        assert_eq!(m.value::<Sample>(), Err(ValueError::Size { expected: std::mem::size_of::<Sample>(), found: 12 }));
        assert!(m.read_value::<Sample>().is_err());
        drop(m);
        c.finish();
    }
}

#[test]
fn a_type_aligned_beyond_the_payload_alignment_is_refused() {
    #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
    #[repr(C, align(64))]
    struct Wide([u8; 64]);
    let d = TestDir::new();
    let t = Topic::create("v", &d.opts().capacity(1 << 16)).expect("create");
    let mut p = t.producer().expect("producer");
    assert!(matches!(p.reserve_value::<Wide>(), Err(PublishError::Unaligned { align: 64 })));
    // Copied out, any alignment is fine.
    let mut s = t.subscribe().expect("subscribe");
    p.publish_value(&Wide([7; 64])).expect("publish");
    assert_eq!(s.recv().expect("message").read_value::<Wide>().expect("copy").0, [7; 64]);
}
