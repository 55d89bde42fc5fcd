//! The classic mistakes with pid-file locks, each a scenario the kernel can settle.
pub fn pitfall_main(_args: &[String]) -> i32 {
    2
}
