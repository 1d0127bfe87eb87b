#!/usr/bin/env node
/**
 * The `hesse` command line: argument parsing only; each subcommand lives in its own module.
 */
import { Command } from 'commander';
import { demo } from './demo.js';

const program = new Command('hesse').description('second-order autodiff on a WebAssembly SIMD core');

program
  .command('demo')
  .description('time the SIMD GEMM against the scalar kernel and check that they agree')
  .action(async () => {
    if (!(await demo())) program.error('simd and scalar GEMM results differ', { exitCode: 1 });
  });

await program.parseAsync();
