//! (placeholder: implemented with issue 2's allocators)
