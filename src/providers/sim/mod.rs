//! The simulated estate (placeholder).
