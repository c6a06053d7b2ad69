"""Prompt templates, as versioned package files."""
