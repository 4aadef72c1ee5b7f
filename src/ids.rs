//! Id newtypes shared by the stages: the index hands them out, matching keys its votes by them.

use serde::{Deserialize, Serialize};

/// Row id of a reference track (local to one index: a pack imported elsewhere gets other ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TrackId(pub i64);
