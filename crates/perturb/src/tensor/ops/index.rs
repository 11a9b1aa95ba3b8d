//! Indexing and joining: slice / narrow, index_select / gather, concat / stack.
