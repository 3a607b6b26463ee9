// Package readme holds the test that runs the commands of the module's
// README.md as written, on a fresh copy of what a clone has, so the README
// cannot drift from the programs. It has no API.
package readme
