from printqueue.bootstrap import main

main()
