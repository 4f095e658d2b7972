//! placeholder: filled by the limits work.
