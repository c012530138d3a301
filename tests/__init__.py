"""Tests of the TOEFL backend; they start real servers on port 0 with databases in temporary folders."""
