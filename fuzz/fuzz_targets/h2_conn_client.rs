//! `h2::proto::Connection` in the client role, fed arbitrary frame sequences by a
//! spindle peer driven from the input plus frames and bytes built from it, with the
//! local side (streams, DATA, windows, SETTINGS, GOAWAY) driven from the input too. The
//! harness and every invariant it asserts (windows within 2^31-1, sends within the
//! window, RFC 9113 §5.1 stream states, no DATA on closed or reset streams, no id reuse,
//! bounded buffers; in clean runs no errors and exact body delivery) are described in
//! h2_conn_common.rs.
#![no_main]
use libfuzzer_sys::fuzz_target;
use spindle::h2::proto::Role;

#[path = "h2_conn_common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let mut input = common::Input::new(data);
    let mut pair = common::Pair::new(Role::Client, &mut input);
    pair.run(&mut input);
});
