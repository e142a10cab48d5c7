from skus.bootstrap import main

main()
