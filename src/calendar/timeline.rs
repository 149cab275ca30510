//! A schedule's decisions over a span of time, precomputed as sorted segments.
//!
//! A [`Timeline`] answers "what is the state at t, why, and when does it next change" with one
//! binary search, which is how curfew decides many targets at once.

use chrono::{DateTime, Utc};

use super::{Decision, Rule, State, Transition};

/// A stretch of time over which the state and the rule that made it stay the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Unix seconds at which the segment begins.
    pub start: i64,
    /// The state throughout the segment.
    pub state: State,
    /// The rule that decides it.
    pub rule: Rule,
}

/// Decisions of one schedule over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    start: i64,
    end: i64,
    segments: Vec<Segment>,
    /// For each segment, the index of the next segment with a different state.
    next_change: Vec<Option<u32>>,
}

// === impl Timeline ===

impl Timeline {
    /// Builds a timeline from segments sorted by start; the first must begin at `start`.
    ///
    /// Neighbouring segments with the same state and rule are merged.
    pub fn new(start: i64, end: i64, segments: impl IntoIterator<Item = Segment>) -> Self {
        let mut merged: Vec<Segment> = Vec::new();
        for segment in segments {
            match merged.last() {
                Some(last) if last.state == segment.state && last.rule == segment.rule => {}
                _ => merged.push(segment),
            }
        }
        let mut next_change = vec![None; merged.len()];
        for index in (0..merged.len().saturating_sub(1)).rev() {
            next_change[index] = if merged[index + 1].state != merged[index].state {
                Some(index as u32 + 1)
            } else {
                next_change[index + 1]
            };
        }
        Timeline {
            start,
            end,
            segments: merged,
            next_change,
        }
    }

    /// First instant covered, in Unix seconds.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// First instant no longer covered, in Unix seconds.
    pub fn end(&self) -> i64 {
        self.end
    }

    /// Whether `at` (Unix seconds) lies inside the timeline.
    pub fn covers(&self, at: i64) -> bool {
        self.start <= at && at < self.end
    }

    /// The decision at `at` (Unix seconds), or `None` outside the timeline.
    ///
    /// `next_change` is `None` when the state does not change before the timeline ends.
    pub fn decide_at(&self, at: i64) -> Option<Decision> {
        if !self.covers(at) {
            return None;
        }
        let index = self
            .segments
            .partition_point(|s| s.start <= at)
            .checked_sub(1)?;
        let segment = self.segments[index];
        let next_change = self.next_change[index]
            .map(|next| self.segments[next as usize].start)
            .and_then(|secs| DateTime::from_timestamp(secs, 0));
        Some(Decision {
            state: segment.state,
            rule: segment.rule,
            next_change,
        })
    }

    /// The decision at instant `at`, or `None` outside the timeline.
    pub fn decide(&self, at: DateTime<Utc>) -> Option<Decision> {
        self.decide_at(at.timestamp())
    }

    /// The state at the start of the timeline.
    pub fn initial(&self) -> Option<Segment> {
        self.segments.first().copied()
    }

    /// Every change of state after the start, in order.
    pub fn transitions(&self) -> Vec<Transition> {
        self.segments
            .windows(2)
            .filter(|pair| pair[0].state != pair[1].state)
            .filter_map(|pair| {
                Some(Transition {
                    at: DateTime::from_timestamp(pair[1].start, 0)?,
                    state: pair[1].state,
                    rule: pair[1].rule,
                })
            })
            .collect()
    }

    /// The segments, in order.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: i64, state: State, rule: Rule) -> Segment {
        Segment { start, state, rule }
    }

    #[test]
    fn next_change_skips_segments_with_the_same_state() {
        let timeline = Timeline::new(
            0,
            100,
            [
                seg(0, State::Up, Rule::Window(0)),
                seg(10, State::Up, Rule::Exception(0)),
                seg(20, State::Down, Rule::OutsideWindows),
            ],
        );
        let decision = timeline.decide_at(5).unwrap();
        assert_eq!(decision.state, State::Up);
        assert_eq!(decision.rule, Rule::Window(0));
        assert_eq!(decision.next_change.unwrap().timestamp(), 20);
        assert_eq!(timeline.decide_at(25).unwrap().next_change, None);
        assert_eq!(timeline.transitions().len(), 1);
    }

    #[test]
    fn instants_outside_the_timeline_have_no_decision() {
        let timeline = Timeline::new(10, 20, [seg(10, State::Up, Rule::Default)]);
        assert!(timeline.decide_at(9).is_none());
        assert!(timeline.decide_at(20).is_none());
        assert!(timeline.decide_at(10).is_some());
    }

    #[test]
    fn identical_neighbours_merge() {
        let timeline = Timeline::new(
            0,
            30,
            [
                seg(0, State::Down, Rule::OutsideWindows),
                seg(10, State::Down, Rule::OutsideWindows),
            ],
        );
        assert_eq!(timeline.segments().len(), 1);
    }
}
