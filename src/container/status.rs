//! Container status and the ONE function that lists the legal transitions.
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        })
    }
}

/// Every legal status change. Anything not listed here is refused.
///
/// creating -> created -> running <-> paused, and any living state -> stopped (the process
/// died, or create failed half way).
pub fn can_change(from: Status, to: Status) -> bool {
    use Status::*;
    matches!(
        (from, to),
        (Creating, Created)
            | (Created, Running)
            | (Running, Paused)
            | (Paused, Running)
            | (Creating | Created | Running | Paused, Stopped)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    #[test]
    fn transitions() {
        let all = [Creating, Created, Running, Paused, Stopped];
        let legal = [
            (Creating, Created),
            (Created, Running),
            (Running, Paused),
            (Paused, Running),
            (Creating, Stopped),
            (Created, Stopped),
            (Running, Stopped),
            (Paused, Stopped),
        ];
        for a in all {
            for b in all {
                assert_eq!(can_change(a, b), legal.contains(&(a, b)), "{a} -> {b}");
            }
        }
    }

    #[test]
    fn serializes_lowercase() {
        assert_eq!(serde_json::to_string(&Paused).unwrap(), "\"paused\"");
    }
}
