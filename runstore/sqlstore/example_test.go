package sqlstore_test

import (
	"fmt"

	"github.com/dynoai/dynoai/runstore/sqlstore"
)

func ExampleRedactDSN() {
	fmt.Println(sqlstore.RedactDSN("postgres://dynoai:s3cret@db.internal:5432/dynoai?sslmode=require"))
	fmt.Println(sqlstore.RedactDSN("host=db.internal user=dynoai password=s3cret dbname=dynoai"))
	// Output:
	// postgres://dynoai:xxxxx@db.internal:5432/dynoai?sslmode=require
	// host=db.internal user=dynoai password=xxxxx dbname=dynoai
}
