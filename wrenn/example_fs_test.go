package wrenn_test

import (
	"context"
	"fmt"
	"io/fs"
	"log"
	"os"

	"git.omukk.dev/wrenn/go-sdk/wrenn"
)

// Walking a capsule directory with the standard library: Files.FS gives
// an io/fs view, bounded by the context it is made with.
func ExampleFiles_FS() {
	ctx := context.Background()
	client, _ := wrenn.NewClient()
	cp, err := client.ConnectCapsule(ctx, "cl-0000000000000000000000000")
	if err != nil {
		log.Fatal(err)
	}
	view, err := cp.Files.FS(ctx, "/root/project")
	if err != nil {
		log.Fatal(err)
	}
	err = fs.WalkDir(view, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && name == ".git" {
			return fs.SkipDir
		}
		fmt.Println(d.Type(), name)
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Globs, templates and file servers take the view as they take os.DirFS.
	goFiles, _ := fs.Glob(view, "cmd/*/*.go")
	fmt.Println(goFiles)
}

// Copying a directory both ways: a local source tree up into the capsule,
// and the build output back down. Each direction is one tar stream plus
// one command in the capsule, in bounded memory; modes, empty directories
// and relative symlinks survive.
func ExampleFiles_UploadDir() {
	ctx := context.Background()
	client, _ := wrenn.NewClient()
	cp, err := client.ConnectCapsule(ctx, "cl-0000000000000000000000000")
	if err != nil {
		log.Fatal(err)
	}
	up, err := cp.Files.UploadDir(ctx, "/root/src", "./src", wrenn.TransferOptions{
		Progress: func(p wrenn.TransferProgress) { fmt.Fprintf(os.Stderr, "\r%d entries, %d bytes", p.Entries, p.Bytes) },
	})
	if err != nil {
		log.Fatal(err) // a *wrenn.TransferError naming the first entry that failed
	}
	fmt.Printf("sent %d files, %d directories, %d links\n", up.Files, up.Dirs, up.Symlinks)

	res, err := cp.Commands.Run(ctx, "make", wrenn.RunOptions{Cwd: "/root/src"})
	if err == nil {
		err = res.Err()
	}
	if err != nil {
		log.Fatal(err)
	}
	down, err := cp.Files.DownloadDir(ctx, "/root/src/out", "./out", wrenn.TransferOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("received %d files (%d bytes)\n", down.Files, down.Bytes)
}
