//! Output formatting shared by the commands: units, Go templates, tab alignment, JSON.

pub mod json;
pub mod tabwriter;
pub mod template;
pub mod units;

pub use template::Formatter;
