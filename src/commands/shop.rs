//! `flashcrowd shop`: serve the embedded demo shop.

use super::{Failure, Outcome};

pub fn shop(_a: crate::cli::ShopArgs) -> Outcome {
    Err(Failure::BadInput("shop: not built yet".into()))
}
