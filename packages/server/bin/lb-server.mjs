#!/usr/bin/env node
// The `lb-server` command. A committed file (not dist/cli.js itself) so that a workspace install, which links bins
// before anything is built, finds it and prints no "Failed to create bin" warning.
import '../dist/cli.js';
