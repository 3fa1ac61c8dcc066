//! Where binlog bytes come from.

pub mod files;
pub mod live;
