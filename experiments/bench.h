/* Benchmark entry points (`unmix bench KIND`); argv starts at KIND. */
#pragma once
int unmix_bench_ops(int argc, char **argv);
int unmix_bench_norm(int argc, char **argv);
int unmix_bench_tsne(int argc, char **argv);
int unmix_bench_data(int argc, char **argv);
int unmix_bench_step(int argc, char **argv);
int unmix_bench_comm(int argc, char **argv);
