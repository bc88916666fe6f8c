//! One file per kernel concern.
