from printer_gateway.bootstrap import main

main()
