"""The real processes launched for the tests and the benchmarks: each service, the gateway, the whole stack."""
