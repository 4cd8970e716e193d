//! Integration tests of the loader: whole files in, typed `Config` or every problem out.

mod common;
mod errors;
mod load;
mod overrides;
mod robustness;
mod secret_refs;
mod warnings;
