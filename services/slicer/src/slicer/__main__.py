from slicer.bootstrap import main

main()
