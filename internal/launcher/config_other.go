//go:build !unix

package launcher

import "os"

func openConfig(path string) (*os.File, error) { return os.Open(path) }

// checkTrust: Windows has no uid and mode bits to judge (its ACLs are not
// read here); the search's boundary is what keeps others' files out.
func checkTrust(string, os.FileInfo) error { return nil }

// ownedByUser cannot tell here: a .git marks no repository's root, or a
// .git planted in a shared parent would make the search read its file.
func ownedByUser(os.FileInfo) bool { return false }
