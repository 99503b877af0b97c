//! What the `bench` binary needs besides the training step itself: the analytic FLOP count of a
//! step, the machine's fp32 peak and copy bandwidth, and the PyTorch peer's result line.

pub mod flops;
pub mod machine;
pub mod peer;
