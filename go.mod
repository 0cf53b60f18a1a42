module github.com/pyudf/pyudf

go 1.26
