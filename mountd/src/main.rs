//! The `fossa` command.
fn main() {
    println!("fossa: placeholder");
}
