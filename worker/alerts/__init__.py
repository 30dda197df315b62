"""Alerts: what a destination receives, from one `AlertContent`: payloads per kind of
destination (`payloads`), operator templates (`templates`) and digests (`digest`). Pure."""
