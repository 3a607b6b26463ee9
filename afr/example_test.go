package afr_test

import (
	"fmt"
	"strings"

	"github.com/dynoai/dynoai/afr"
)

func ExampleMultiplier() {
	// A cell that read 14.0 against a 13.0 target is lean: it needs 7.7 %
	// more fuel.
	m, err := afr.Multiplier(14.0, 13.0)
	if err != nil {
		panic(err)
	}
	fmt.Printf("v2 %.4f (%+.2f %%)\n", m, afr.PctFromMultiplier(m))
	v1, _ := afr.MultiplierConfig{Version: afr.V1}.Multiplier(14.0, 13.0)
	fmt.Printf("v1 %.4f\n", v1)
	fmt.Printf("legacy Pipeline A error %.4f %%\n", afr.ErrorPctLegacy(14.0, 13.0))
	// Output:
	// v2 1.0769 (+7.69 %)
	// v1 1.0700
	// legacy Pipeline A error -7.1429 %
}

func ExampleReadTargetsCSV() {
	table := "RPM,30,60,100\n1500,14.6,14.0,13.0\n3000,14.5,13.8,12.8\n"
	t, err := afr.ReadTargetsCSV(strings.NewReader(table), afr.TargetOptions{})
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.2f\n", t.At(2250, 80))
	fmt.Printf("lambda %.3f\n", afr.Gasoline().Lambda(t.At(3000, 100)))
	// Output:
	// 13.40
	// lambda 0.871
}

func ExampleFuel_ValidAFR() {
	for _, v := range []float64{13.2, afr.Sentinel, 19.5} {
		fmt.Println(v, afr.Gasoline().ValidAFR(v))
	}
	// Output:
	// 13.2 true
	// 5.1 false
	// 19.5 false
}
