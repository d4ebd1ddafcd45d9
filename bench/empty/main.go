// Command empty does nothing: the floor a Go program's start costs, which
// make bench compares the health check against.
package main

func main() {}
