//! Integration tests of the mapping crate: each built-in mapping shape of issue 19, errors at
//! load and at evaluation, the default mapping against today's behaviour, inverse pairs as a
//! property, and a cost measurement (ignored by default).

mod cost;
mod defaults;
mod errors;
mod helpers;
mod roundtrip;
mod scope;
mod shapes;
