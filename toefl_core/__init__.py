"""Shared library of the TOEFL services: server bootstrap, auth, errors, ownership marks, psychometrics."""
