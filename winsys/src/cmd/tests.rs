//! Tests of the command-buffer builder, encoder and decoder.
