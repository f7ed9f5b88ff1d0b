module github.com/kvgo/kvgo

go 1.26
