//! placeholder: filled by the auth work.
