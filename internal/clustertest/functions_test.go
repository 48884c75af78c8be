package clustertest

import _ "github.com/surgefn/surge/functions/all" // the built-in functions the tests deploy
